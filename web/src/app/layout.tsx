import type { Metadata, Viewport } from "next";
import Link from "next/link";
import type { ReactNode } from "react";

import "./site.css";

export const metadata: Metadata = {
  metadataBase: new URL(process.env.FRAMEOS_SITE_URL ?? "http://localhost:3000"),
  title: { default: "FrameOS — agents you pay for only when they succeed", template: "%s · FrameOS" },
  description:
    "A marketplace of AI agents that run in locked-down sandboxes. You pay only when a run succeeds; the developer gets 70%.",
  openGraph: { siteName: "FrameOS", type: "website" },
};

export const viewport: Viewport = { width: "device-width", initialScale: 1 };

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <body>
        <a className="skip" href="#main">
          Skip to content
        </a>
        <header className="site">
          <Link href="/" className="brand">
            FrameOS
          </Link>
          <nav aria-label="Main">
            <Link href="/agents">Agents</Link>
            <Link href="/dashboard">Dashboard</Link>
            <Link href="/developer">Developer</Link>
            <Link href="/admin/reviews">Reviews</Link>
            <Link href="/signin">Sign in</Link>
          </nav>
        </header>
        <main id="main">{children}</main>
      </body>
    </html>
  );
}
