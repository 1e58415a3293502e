// A JSON value laid out as a tree to show, with a bound on how much of it is shown: an
// agent's output can be large, and a page of tens of thousands of nodes helps nobody.

export type JsonKind = "object" | "array" | "string" | "number" | "boolean" | "null";

export interface JsonNode {
  /** The key in its parent (an index for arrays); null at the root. */
  name: string | null;
  kind: JsonKind;
  /** A scalar as JSON spells it; for objects and arrays, "{n keys}" / "[n items]". */
  text: string;
  children: JsonNode[];
  /** Children left out because the tree reached its size bound. */
  hidden: number;
}

function kindOf(value: unknown): JsonKind {
  if (value === null || value === undefined) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "object") return "object";
  if (typeof value === "string") return "string";
  if (typeof value === "number") return "number";
  if (typeof value === "boolean") return "boolean";
  return "null";
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** `value` as a tree of at most `maxNodes` nodes, breadth kept in document order. */
export function jsonTree(value: unknown, maxNodes = 1500): JsonNode {
  let left = maxNodes;
  const build = (name: string | null, v: unknown): JsonNode => {
    left -= 1;
    const kind = kindOf(v);
    if (kind !== "object" && kind !== "array") {
      return { name, kind, text: kind === "null" ? "null" : JSON.stringify(v), children: [], hidden: 0 };
    }
    const entries: [string, unknown][] = Array.isArray(v)
      ? v.map((item, index) => [String(index), item])
      : Object.entries(v as Record<string, unknown>);
    const children: JsonNode[] = [];
    for (const [key, item] of entries) {
      if (left <= 0) break;
      children.push(build(key, item));
    }
    const text = kind === "array" ? `[${plural(entries.length, "item")}]` : `{${plural(entries.length, "key")}}`;
    return { name, kind, text, children, hidden: entries.length - children.length };
  };
  return build(null, value);
}
