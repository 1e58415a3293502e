"use client";

import { useRouter } from "next/navigation";
import { useEffect, useState } from "react";

import type { LogLine } from "@/api/client";

interface Progress {
  fraction: number;
  message: string;
}

/** Log lines and progress as they happen, through this site's event stream; when the
 * execution ends the page is rendered again on the server with its outcome. */
export function Live({ id, lines: first, running }: { id: string; lines: LogLine[]; running: boolean }) {
  const router = useRouter();
  const [lines, setLines] = useState(first);
  const [progress, setProgress] = useState<Progress | null>(null);
  const [broken, setBroken] = useState<string | null>(null);

  useEffect(() => {
    if (!running) return;
    const source = new EventSource(`/api/executions/${encodeURIComponent(id)}/events`);
    source.addEventListener("log", (event) => {
      const line = JSON.parse((event as MessageEvent<string>).data) as LogLine;
      setLines((seen) => (seen.some((l) => l.seq === line.seq) ? seen : [...seen, line]));
    });
    source.addEventListener("progress", (event) => {
      setProgress(JSON.parse((event as MessageEvent<string>).data) as Progress);
    });
    source.addEventListener("error", (event) => {
      const data = (event as MessageEvent<string>).data;
      if (typeof data === "string") {
        setBroken((JSON.parse(data) as { message: string }).message);
        source.close();
      }
    });
    source.addEventListener("end", () => {
      source.close();
      router.refresh();
    });
    return () => source.close();
  }, [id, running, router]);

  return (
    <>
      {progress ? (
        <p>
          <progress value={progress.fraction} max={1} aria-label="Progress" /> {Math.round(progress.fraction * 100)}%{" "}
          {progress.message}
        </p>
      ) : null}
      {broken ? (
        <p role="alert" className="error">
          {broken}
        </p>
      ) : null}
      <h2>Logs</h2>
      {lines.length === 0 ? (
        <p className="muted">{running ? "Waiting for the first line…" : "The agent printed nothing."}</p>
      ) : (
        <ol className="logs" aria-live="polite" aria-label="Log" tabIndex={0}>
          {lines.map((l) => (
            <li key={l.seq} className={l.stream}>
              {l.stream === "system" ? <strong>[platform] </strong> : null}
              {l.line}
            </li>
          ))}
        </ol>
      )}
    </>
  );
}
