// The run form generated from an inputs schema: which schemas become fields, and what the
// fields let through before the API sees the inputs.
import assert from "node:assert/strict";
import { test } from "node:test";

import { collect, formOf } from "../../src/lib/schema-form";

const wordCount = {
  type: "object",
  required: ["text"],
  additionalProperties: false,
  properties: {
    text: { type: "string", maxLength: 1000000, description: "The text to analyse." },
    top_n: { type: "integer", minimum: 1, maximum: 100, default: 10 },
    mode: { enum: ["fast", "exact"], default: "fast" },
    title: { type: "string", maxLength: 80 },
    ratio: { type: "number", minimum: 0, maximum: 1 },
    verbose: { type: "boolean", default: false },
  },
};

test("a flat object schema becomes one field per property", () => {
  const { fields } = formOf(wordCount);
  assert.ok(fields);
  assert.deepEqual(
    fields.map((f) => [f.name, f.kind, f.required, f.default]),
    [
      ["text", "text", true, null],
      ["top_n", "integer", false, "10"],
      ["mode", "enum", false, "fast"],
      ["title", "string", false, null],
      ["ratio", "number", false, null],
      ["verbose", "boolean", false, false],
    ],
  );
});

test("schemas a form cannot express ask for JSON", () => {
  assert.equal(formOf({ type: "array", items: { type: "string" } }).fields, null);
  assert.equal(formOf({ type: "object", properties: { tags: { type: "array" } } }).fields, null);
  assert.equal(formOf({ type: "object", properties: { n: { enum: [1, 2] } } }).fields, null);
  assert.equal(formOf(undefined).fields, null);
  assert.equal(formOf({ type: "object" }).fields, null);
});

test("values become typed inputs; empty optional fields are left to the API's defaults", () => {
  const { fields } = formOf(wordCount);
  assert.ok(fields);
  assert.deepEqual(collect(fields, { text: "a b", top_n: " 3 ", mode: "exact", title: "", ratio: "0.5", verbose: true }), {
    inputs: { text: "a b", top_n: 3, mode: "exact", ratio: 0.5, verbose: true },
  });
  assert.deepEqual(collect(fields, { text: "x", verbose: false }), { inputs: { text: "x" } });
});

test("each field says what is wrong with it", () => {
  const { fields } = formOf(wordCount);
  assert.ok(fields);
  assert.deepEqual(collect(fields, { text: "  ", top_n: "2.5", mode: "slow", title: "t".repeat(81), ratio: "2" }), {
    errors: {
      text: "Required.",
      top_n: "Enter a whole number.",
      mode: "Choose one of fast, exact.",
      title: "At most 80 characters.",
      ratio: "At most 1.",
    },
  });
  assert.deepEqual(collect(fields, { text: "x", top_n: "0", ratio: "abc" }), {
    errors: { top_n: "At least 1.", ratio: "Enter a number." },
  });
});

test("lengths count characters, not UTF-16 units", () => {
  const { fields } = formOf({ type: "object", properties: { s: { type: "string", maxLength: 2 } } });
  assert.ok(fields);
  assert.deepEqual(collect(fields, { s: "😀😀" }), { inputs: { s: "😀😀" } });
});
