// A run form from an agent's `inputs` JSON Schema: simple object schemas become fields, anything
// else a JSON text area. The checks here only spare people a round trip; the API validates the
// inputs against the schema itself and its message is what counts.

export type Kind = "string" | "text" | "number" | "integer" | "boolean" | "enum";

export interface Field {
  name: string;
  kind: Kind;
  required: boolean;
  description: string | null;
  minimum: number | null;
  maximum: number | null;
  minLength: number | null;
  maxLength: number | null;
  options: string[];
  default: string | boolean | null;
}

/** `fields` when every property maps onto a field; `null` asks for the JSON text area. */
export interface Form {
  fields: Field[] | null;
}

/** A string longer than this gets a text area. */
const LINE_MAX = 200;

type Json = Record<string, unknown>;

function object(value: unknown): Json | null {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Json) : null;
}

function num(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

function field(name: string, schema: Json, required: boolean): Field | null {
  const description = typeof schema.description === "string" ? schema.description : null;
  const base = {
    name,
    required,
    description,
    minimum: num(schema.minimum),
    maximum: num(schema.maximum),
    minLength: num(schema.minLength),
    maxLength: num(schema.maxLength),
    options: [] as string[],
  };
  const dflt = schema.default;
  if (Array.isArray(schema.enum)) {
    if (!schema.enum.every((o): o is string => typeof o === "string")) return null;
    return { ...base, kind: "enum", options: schema.enum, default: typeof dflt === "string" ? dflt : null };
  }
  switch (schema.type) {
    case "string": {
      const long = base.maxLength === null || base.maxLength > LINE_MAX;
      return { ...base, kind: long ? "text" : "string", default: typeof dflt === "string" ? dflt : null };
    }
    case "integer":
    case "number":
      return { ...base, kind: schema.type, default: typeof dflt === "number" ? String(dflt) : null };
    case "boolean":
      return { ...base, kind: "boolean", default: typeof dflt === "boolean" ? dflt : null };
    default:
      return null;
  }
}

export function formOf(schema: unknown): Form {
  const root = object(schema);
  const properties = object(root?.properties);
  if (!root || root.type !== "object" || !properties) return { fields: null };
  const required = new Set(Array.isArray(root.required) ? root.required.filter((r) => typeof r === "string") : []);
  const fields: Field[] = [];
  for (const [name, property] of Object.entries(properties)) {
    const schemaOf = object(property);
    const made = schemaOf ? field(name, schemaOf, required.has(name)) : null;
    if (!made) return { fields: null };
    fields.push(made);
  }
  return { fields };
}

/** What a form holds: text per field, `true`/`false` for a check box. */
export type Values = Record<string, string | boolean | undefined>;

export type Collected = { inputs: Json } | { errors: Record<string, string> };

/** The inputs object from the form's values, or a message per field that cannot be right. */
export function collect(fields: Field[], values: Values): Collected {
  const inputs: Json = {};
  const errors: Record<string, string> = {};
  for (const f of fields) {
    const value = values[f.name];
    if (f.kind === "boolean") {
      if (value === true || f.required) inputs[f.name] = value === true;
      continue;
    }
    const text = typeof value === "string" ? value : "";
    if (text.trim() === "") {
      if (f.required) errors[f.name] = "Required.";
      continue;
    }
    const problem = check(f, text);
    if (problem) errors[f.name] = problem;
    else inputs[f.name] = f.kind === "integer" || f.kind === "number" ? Number(text.trim()) : text;
  }
  return Object.keys(errors).length > 0 ? { errors } : { inputs };
}

function check(f: Field, text: string): string | null {
  if (f.kind === "enum") return f.options.includes(text) ? null : `Choose one of ${f.options.join(", ")}.`;
  if (f.kind === "integer" || f.kind === "number") {
    const n = Number(text.trim());
    if (!Number.isFinite(n)) return "Enter a number.";
    if (f.kind === "integer" && !Number.isInteger(n)) return "Enter a whole number.";
    if (f.minimum !== null && n < f.minimum) return `At least ${f.minimum}.`;
    if (f.maximum !== null && n > f.maximum) return `At most ${f.maximum}.`;
    return null;
  }
  const length = [...text].length;
  if (f.minLength !== null && length < f.minLength) return `At least ${f.minLength} characters.`;
  if (f.maxLength !== null && length > f.maxLength) return `At most ${f.maxLength} characters.`;
  return null;
}
