import type { NextConfig } from "next";

const config: NextConfig = {
  poweredByHeader: false,
  reactStrictMode: true,
  experimental: {
    // A package upload goes through a server action: the gateway's own bound
    // (FRAMEOS_MAX_PACKAGE_BYTES, 10 MiB by default) is the one that answers; this only lets it.
    serverActions: { bodySizeLimit: "11mb" },
  },
};

export default config;
