import type { Version } from "@/api/client";

/** The scanner's report of a version: passed, or each finding with its file and line. */
export function Scan({ scan }: { scan: Version["scan"] }) {
  if (scan.violations.length === 0) return <p>The scanner found nothing.</p>;
  return (
    <>
      <p className={scan.passed ? undefined : "error"}>
        {scan.passed ? "The scanner passed it with findings:" : "The scanner rejected it:"}
      </p>
      <ul data-testid="violations">
        {scan.violations.map((v) => (
          <li key={`${v.path}:${v.line}:${v.rule}`}>
            <code>
              {v.path}:{v.line}
            </code>{" "}
            {v.rule} ({v.severity})
          </li>
        ))}
      </ul>
    </>
  );
}
