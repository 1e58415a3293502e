import type { Metadata } from "next";

import { localPath } from "@/api/session";

import { SignInForm } from "./form";

export const metadata: Metadata = { title: "Sign in", robots: { index: false } };

interface Props {
  searchParams: Promise<{ next?: string | string[] }>;
}

export default async function SignIn({ searchParams }: Props) {
  const { next } = await searchParams;
  return (
    <>
      <h1>Sign in</h1>
      <SignInForm next={localPath(Array.isArray(next) ? next[0] : next)} />
    </>
  );
}
