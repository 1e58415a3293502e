import type { Metadata } from "next";
import Link from "next/link";
import { redirect } from "next/navigation";

import {
  type PackageFileContent,
  type PackageFileList,
  type Version,
  getPackageFile,
  listPackageFiles,
  listVersions,
} from "@/api/client";
import { sessionKey } from "@/api/session";
import { statusText } from "@/lib/present";

import { JsonView } from "../../../../json-view";
import { Problem } from "../../../../problem";
import { Scan } from "../../../../scan";
import { Decide } from "../../decide";

export const metadata: Metadata = { title: "Review a package", robots: { index: false } };

interface Props {
  params: Promise<{ slug: string; version: string }>;
  searchParams: Promise<{ file?: string | string[] }>;
}

function bytes(n: number): string {
  return n < 1024 ? `${n} B` : `${(n / 1024).toFixed(1)} KiB`;
}

// One version under review: the scanner's findings, the manifest and every file of the exact
// package that will run, read through the API with the admin's key.
export default async function ReviewPackage({ params, searchParams }: Props) {
  const { slug, version } = await params;
  const here = `/admin/reviews/${encodeURIComponent(slug)}/${encodeURIComponent(version)}`;
  const key = await sessionKey();
  if (!key) redirect(`/signin?next=${encodeURIComponent(here)}`);
  const asked = (await searchParams).file;
  const path = Array.isArray(asked) ? asked[0] : asked;
  let found: Version | undefined;
  let files: PackageFileList;
  try {
    const [versions, listed] = await Promise.all([listVersions(key, slug), listPackageFiles(key, slug, version)]);
    found = versions.items.find((v) => v.version === version);
    files = listed;
  } catch (error) {
    return (
      <>
        <h1>
          {slug} {version}
        </h1>
        <Problem error={error} />
      </>
    );
  }
  let file: PackageFileContent | null = null;
  let fileProblem: unknown = null;
  if (path) {
    try {
      file = await getPackageFile(key, slug, version, path);
    } catch (error) {
      fileProblem = error;
    }
  }
  return (
    <article>
      <p>
        <Link href="/admin/reviews">← Review queue</Link>
      </p>
      <h1>
        {slug} {version}
      </h1>
      {found ? (
        <>
          <p className="muted">
            {statusText(found.status)} · {found.size_bytes} bytes · sha256 <code>{found.sha256}</code>
          </p>
          <Scan scan={found.scan} />
          <h2>Manifest</h2>
          <JsonView value={found.manifest} />
        </>
      ) : null}
      <h2 id="files">Files</h2>
      <div className="files">
        <nav aria-labelledby="files">
          <ul data-testid="files">
            {files.items.map((f) => (
              <li key={f.path}>
                <Link
                  href={`${here}?file=${encodeURIComponent(f.path)}`}
                  aria-current={f.path === path ? "page" : undefined}
                >
                  {f.path}
                </Link>{" "}
                <span className="muted">{bytes(f.size_bytes)}</span>
              </li>
            ))}
          </ul>
        </nav>
        <section aria-label={file ? file.path : "File"}>
          {fileProblem ? <Problem error={fileProblem} /> : null}
          {file ? (
            <>
              <h3>{file.path}</h3>
              {file.encoding === "utf8" ? (
                // Focusable, so a keyboard can scroll a long file.
                <pre className="json" data-testid="file" tabIndex={0}>
                  {file.content}
                </pre>
              ) : (
                <p>A binary file of {bytes(file.size_bytes)}; it is not shown as text.</p>
              )}
              {file.truncated ? <p className="muted">Only the first 256 KiB are shown.</p> : null}
            </>
          ) : !fileProblem ? (
            <p className="muted">Choose a file to read it.</p>
          ) : null}
        </section>
      </div>
      {found?.status === "pending_review" ? (
        <section aria-labelledby="decide">
          <h2 id="decide">Decision</h2>
          <Decide slug={slug} version={version} />
        </section>
      ) : null}
    </article>
  );
}
