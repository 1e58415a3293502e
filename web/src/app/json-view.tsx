// A JSON value as a tree people can fold (native <details>: keyboard and screen-reader ready,
// no client JavaScript), with the exact JSON text under it to read or copy.
import { type JsonNode, jsonTree } from "@/lib/json-tree";

function Node({ node, depth }: { node: JsonNode; depth: number }) {
  const label = node.name === null ? null : <span className="json-key">{node.name}: </span>;
  if (node.kind !== "object" && node.kind !== "array") {
    return (
      <li>
        {label}
        <span className={`json-${node.kind}`}>{node.text}</span>
      </li>
    );
  }
  return (
    <li>
      <details open={depth < 2}>
        <summary>
          {label}
          <span className="muted">{node.text}</span>
        </summary>
        <ul>
          {node.children.map((child) => (
            <Node key={child.name} node={child} depth={depth + 1} />
          ))}
          {node.hidden > 0 ? <li className="muted">… {node.hidden} more: see the JSON text</li> : null}
        </ul>
      </details>
    </li>
  );
}

/** `value` as a foldable tree plus its JSON text (which carries `testId`). */
export function JsonView({ value, testId }: { value: unknown; testId?: string }) {
  return (
    <div className="json-view">
      <ul className="json-tree" tabIndex={0} aria-label="JSON tree">
        <Node node={jsonTree(value)} depth={0} />
      </ul>
      <details>
        <summary>JSON text</summary>
        <pre className="json" data-testid={testId} tabIndex={0}>
          {JSON.stringify(value, null, 2)}
        </pre>
      </details>
    </div>
  );
}
