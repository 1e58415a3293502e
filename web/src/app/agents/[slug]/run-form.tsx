"use client";

import { type FormEvent, useActionState, useRef, useState } from "react";

import { type Field, type Values, collect, formOf } from "@/lib/schema-form";

import { type Outcome, runAgent } from "../../actions";
import { Alert } from "../../alert";

/** The run form generated from the agent's inputs schema; posts the inputs as JSON. */
export function RunForm({ slug, schema }: { slug: string; schema: unknown }) {
  const [outcome, action, pending] = useActionState<Outcome, FormData>(runAgent.bind(null, slug), { error: null });
  const [errors, setErrors] = useState<Record<string, string>>({});
  const inputs = useRef<HTMLInputElement>(null);
  const { fields } = formOf(schema);

  function submit(event: FormEvent<HTMLFormElement>) {
    if (!fields) {
      const text = new FormData(event.currentTarget).get("json");
      try {
        JSON.parse(String(text ?? ""));
        if (inputs.current) inputs.current.value = String(text);
        setErrors({});
      } catch {
        event.preventDefault();
        setErrors({ json: "Not valid JSON." });
      }
      return;
    }
    const data = new FormData(event.currentTarget);
    const values: Values = {};
    for (const f of fields) {
      values[f.name] = f.kind === "boolean" ? data.has(f.name) : String(data.get(f.name) ?? "");
    }
    const collected = collect(fields, values);
    if ("errors" in collected) {
      event.preventDefault();
      setErrors(collected.errors);
      return;
    }
    setErrors({});
    if (inputs.current) inputs.current.value = JSON.stringify(collected.inputs);
  }

  return (
    <form action={action} onSubmit={submit} className="stack" noValidate aria-label="Run this agent">
      <input ref={inputs} type="hidden" name="inputs" />
      {fields ? (
        fields.map((f) => <FieldInput key={f.name} field={f} error={errors[f.name]} />)
      ) : (
        <>
          <label htmlFor="json">Inputs (JSON)</label>
          <textarea id="json" name="json" rows={8} defaultValue="{}" aria-invalid={Boolean(errors.json)} />
          {errors.json ? <p className="field-error">{errors.json}</p> : null}
        </>
      )}
      <Alert message={outcome.error} />
      <button type="submit" disabled={pending}>
        {pending ? "Starting…" : "Run"}
      </button>
    </form>
  );
}

function FieldInput({ field: f, error }: { field: Field; error: string | undefined }) {
  const id = `input-${f.name}`;
  const described = [f.description ? `${id}-help` : null, error ? `${id}-error` : null].filter(Boolean).join(" ");
  const common = {
    id,
    name: f.name,
    required: f.required,
    "aria-invalid": Boolean(error),
    "aria-describedby": described || undefined,
  };
  let control;
  switch (f.kind) {
    case "boolean":
      control = <input {...common} type="checkbox" defaultChecked={f.default === true} />;
      break;
    case "enum":
      control = (
        <select {...common} defaultValue={typeof f.default === "string" ? f.default : ""}>
          {f.required ? null : <option value="">—</option>}
          {f.options.map((o) => (
            <option key={o}>{o}</option>
          ))}
        </select>
      );
      break;
    case "text":
      control = <textarea {...common} rows={6} defaultValue={typeof f.default === "string" ? f.default : ""} />;
      break;
    case "integer":
    case "number":
      control = (
        <input
          {...common}
          type="number"
          inputMode={f.kind === "integer" ? "numeric" : "decimal"}
          step={f.kind === "integer" ? 1 : "any"}
          min={f.minimum ?? undefined}
          max={f.maximum ?? undefined}
          defaultValue={typeof f.default === "string" ? f.default : ""}
        />
      );
      break;
    default:
      control = <input {...common} type="text" defaultValue={typeof f.default === "string" ? f.default : ""} />;
  }
  return (
    <div className="stack">
      <label htmlFor={id}>
        {f.name}
        {f.required ? " (required)" : ""}
      </label>
      {control}
      {f.description ? (
        <p id={`${id}-help`} className="muted">
          {f.description}
        </p>
      ) : null}
      {error ? (
        <p id={`${id}-error`} className="field-error">
          {error}
        </p>
      ) : null}
    </div>
  );
}
