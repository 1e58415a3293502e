// How API values are laid out for people: the JSON viewer's tree and its size bound, and the
// agent page's examples and changelog read from a manifest.
import assert from "node:assert/strict";
import { test } from "node:test";

import { jsonTree } from "../../src/lib/json-tree";
import { changelog, day, dependencies, examples, when } from "../../src/lib/present";

test("a JSON value becomes a tree with its keys, kinds and JSON spellings", () => {
  const tree = jsonTree({ label: "positive", scores: [0.9, null], ok: true });
  assert.equal(tree.name, null);
  assert.equal(tree.text, "{3 keys}");
  assert.deepEqual(
    tree.children.map((c) => [c.name, c.kind, c.text]),
    [
      ["label", "string", '"positive"'],
      ["scores", "array", "[2 items]"],
      ["ok", "boolean", "true"],
    ],
  );
  assert.deepEqual(
    tree.children[1]?.children.map((c) => [c.name, c.kind, c.text]),
    [
      ["0", "number", "0.9"],
      ["1", "null", "null"],
    ],
  );
  assert.equal(jsonTree("just text").text, '"just text"');
  assert.equal(jsonTree([]).text, "[0 items]");
});

test("a large value is cut at the node bound and says how much is left out", () => {
  const big = Array.from({ length: 5000 }, (_, i) => i);
  const tree = jsonTree(big, 100);
  assert.equal(tree.children.length, 99, "the root counts as one node");
  assert.equal(tree.hidden, 4901);
  let count = 0;
  const walk = (n: { children: unknown[] }): void => {
    count += 1;
    (n.children as { children: unknown[] }[]).forEach(walk);
  };
  walk(tree);
  assert.ok(count <= 100, `${count} nodes`);
});

test("examples and changelogs are read from the manifest, defensively", () => {
  const manifest = {
    changelog: "Faster.",
    examples: [{ title: "Two words", inputs: { text: "a b" }, output: { words: 2 } }, { inputs: {} }, "junk"],
  };
  const read = examples(manifest);
  assert.equal(read.length, 3);
  assert.deepEqual(read[0], { title: "Two words", inputs: { text: "a b" }, output: { words: 2 }, hasOutput: true });
  assert.equal(read[1]?.hasOutput, false);
  assert.equal(read[1]?.title, null);
  assert.equal(read[2]?.hasOutput, false);
  assert.deepEqual(examples({}), []);
  assert.equal(changelog(manifest), "Faster.");
  assert.equal(changelog({ changelog: "  " }), null);
  assert.equal(changelog({ changelog: 3 }), null);
  assert.equal(day("2026-11-28T23:59:00Z"), "28 Nov 2026");
  assert.equal(day("not a date"), "not a date");
});

test("dependencies are listed by slug with their ranges", () => {
  assert.deepEqual(dependencies({ dependencies: { sentiment: "^1.0.0", "word-count": "~1.2", bad: 3 } }), [
    ["sentiment", "^1.0.0"],
    ["word-count", "~1.2"],
  ]);
  assert.deepEqual(dependencies({}), []);
});

test("a schedule's times read in its own time zone, which they name", () => {
  assert.equal(when("2026-12-07T09:00:00Z"), "Mon, 7 Dec 2026, 09:00 UTC");
  assert.equal(when("2026-12-07T08:00:00Z", "Europe/Paris"), "Mon, 7 Dec 2026, 09:00 Europe/Paris");
  assert.equal(when("2026-12-07T08:00:00Z", "Not/AZone"), "Mon, 7 Dec 2026, 08:00 UTC", "an unknown zone falls back to UTC");
  assert.equal(when(undefined), "");
  assert.equal(when("not a date"), "not a date");
});
