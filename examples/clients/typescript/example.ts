// A typed FrameOS REST client with stock tools only: `api.d.ts` is generated from the gateway's
// /openapi.json by openapi-typescript, and the calls go through openapi-fetch. Every request
// and every answer below is checked by `tsc --strict` against that document.
//
// What it does: who am I (admin), create a developer, publish a small Node agent (the package is
// a gzip-compressed tar built here), approve it, run it with an Idempotency-Key, wait for the
// result, read its logs, and show that an error has the documented body.
//
//   FRAMEOS_API_URL=http://127.0.0.1:8080 FRAMEOS_API_KEY=fos_... node dist/example.js
//
// scripts/clients/run.sh generates api.d.ts, type-checks this file and runs it.

import { gzipSync } from "node:zlib";
import createClient from "openapi-fetch";
import type { components, paths } from "./api.js";

type Schemas = components["schemas"];
type Execution = Schemas["ExecutionView"];
type ErrorBody = Schemas["ErrorBody"];
// The upload's documented body (binary, which openapi-typescript types as a string): the bytes
// go through as they are, by `bodySerializer`.
type Package = NonNullable<paths["/v1/agents/{slug}/versions"]["post"]["requestBody"]>["content"]["application/gzip"];

const FINAL: ReadonlyArray<Execution["status"]> = ["succeeded", "failed", "timed_out", "canceled"];

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

function client(baseUrl: string, key?: string) {
  return createClient<paths>({
    baseUrl,
    headers: key ? { Authorization: `Bearer ${key}` } : {},
  });
}

/** The `error` of a failed call, as a message; the body shape is the document's ErrorBody. */
function explain(error: ErrorBody | undefined, response: Response): string {
  return error ? `${response.status} ${error.error.code}: ${error.error.message}` : `${response.status}`;
}

/** One ustar entry: a 512-byte header, the data, padding to 512. */
function tarEntry(name: string, data: Buffer): Buffer {
  const header = Buffer.alloc(512);
  const field = (offset: number, length: number, value: string) => header.write(value, offset, length, "ascii");
  const octal = (offset: number, length: number, value: number) =>
    field(offset, length, value.toString(8).padStart(length - 1, "0") + "\0");
  field(0, 100, name);
  octal(100, 8, 0o644);
  octal(108, 8, 0);
  octal(116, 8, 0);
  octal(124, 12, data.length);
  octal(136, 12, Math.floor(Date.now() / 1000));
  field(148, 8, "        ");
  field(156, 1, "0");
  field(257, 6, "ustar\0");
  field(263, 2, "00");
  let sum = 0;
  for (const byte of header) sum += byte;
  field(148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
  const padding = Buffer.alloc((512 - (data.length % 512)) % 512);
  return Buffer.concat([header, data, padding]);
}

/** The package of API.md §1: a gzip-compressed tar with agent.json at its root. */
function agentPackage(slug: string): Uint8Array {
  const manifest = {
    name: slug,
    version: "1.0.0",
    runtime: "node",
    entrypoint: "index.js",
    description: "Counts words (the TypeScript client example).",
    inputs: { type: "object", required: ["text"], properties: { text: { type: "string" } } },
  };
  const code = [
    "module.exports = async (inputs) => {",
    "  console.log('counting');",
    "  return { words: inputs.text.split(/\\s+/).filter(Boolean).length };",
    "};",
    "",
  ].join("\n");
  const tar = Buffer.concat([
    tarEntry("agent.json", Buffer.from(JSON.stringify(manifest))),
    tarEntry("index.js", Buffer.from(code)),
    Buffer.alloc(1024),
  ]);
  return new Uint8Array(gzipSync(tar));
}

async function main(): Promise<void> {
  const baseUrl = env("FRAMEOS_API_URL");
  const admin = client(baseUrl, env("FRAMEOS_API_KEY"));
  const suffix = Math.random().toString(36).slice(2, 10);

  const me = await admin.GET("/v1/me");
  if (!me.data) throw new Error(explain(me.error, me.response));
  console.log(`me: ${me.data.name} (${me.data.role})`);

  const created = await admin.POST("/v1/accounts", {
    body: { name: `ts-dev-${suffix}`, role: "developer" },
  });
  if (!created.data) throw new Error(explain(created.error, created.response));
  const developer = client(baseUrl, created.data.api_key);
  console.log(`account: ${created.data.name} (${created.data.role})`);

  const slug = `ts-words-${suffix}`;
  const agent = await developer.POST("/v1/agents", {
    body: { slug, name: "Words (TypeScript client)", pricing: { model: "free" } },
  });
  if (!agent.data) throw new Error(explain(agent.error, agent.response));
  console.log(`agent: ${agent.data.slug}, pricing ${agent.data.pricing.model}`);

  // The upload's body is raw bytes (application/gzip), sent as they are.
  const version = await developer.POST("/v1/agents/{slug}/versions", {
    params: { path: { slug } },
    body: agentPackage(slug) as unknown as Package,
    bodySerializer: (body: unknown) => body as BodyInit,
    headers: { "Content-Type": "application/gzip" },
  });
  if (!version.data) throw new Error(explain(version.error, version.response));
  console.log(`version: ${version.data.version} ${version.data.status}, scan passed: ${version.data.scan.passed}`);

  const approved = await admin.POST("/v1/agents/{slug}/versions/{version}/approve", {
    params: { path: { slug, version: version.data.version } },
  });
  if (!approved.data) throw new Error(explain(approved.error, approved.response));
  console.log(`review: ${approved.data.status}`);

  const listed = await client(baseUrl).GET("/v1/agents", { params: { query: { q: slug, page_size: 10 } } });
  if (!listed.data) throw new Error(explain(listed.error, listed.response));
  console.log(`marketplace: ${listed.data.items.map((a) => a.slug).join(", ")}`);

  // A documented error: inputs that do not match the agent's schema.
  const refused = await developer.POST("/v1/agents/{slug}/executions", {
    params: { path: { slug } },
    body: { inputs: { txt: 1 } },
  });
  if (refused.data || !refused.error) throw new Error("invalid inputs were accepted");
  console.log(`refused: ${explain(refused.error, refused.response)}`);

  const run = {
    params: { path: { slug }, header: { "Idempotency-Key": `ts-${suffix}` } },
    body: { inputs: { text: "the quick brown fox" } },
  };
  const queued = await developer.POST("/v1/agents/{slug}/executions", run);
  if (!queued.data) throw new Error(explain(queued.error, queued.response));
  const again = await developer.POST("/v1/agents/{slug}/executions", run);
  if (again.data?.id !== queued.data.id) throw new Error("the Idempotency-Key did not return the same execution");
  console.log(`execution: ${queued.data.id} ${queued.data.status}`);

  let execution: Execution = queued.data;
  const deadline = Date.now() + 120_000;
  while (!FINAL.includes(execution.status)) {
    if (Date.now() > deadline) throw new Error(`still ${execution.status} after 120 s`);
    await new Promise((resolve) => setTimeout(resolve, 250));
    const polled = await developer.GET("/v1/executions/{id}", { params: { path: { id: execution.id } } });
    if (!polled.data) throw new Error(explain(polled.error, polled.response));
    execution = polled.data;
  }
  if (execution.status !== "succeeded") throw new Error(`the execution ended ${execution.status}: ${execution.error}`);
  console.log(`result: ${JSON.stringify(execution.output)} in ${execution.duration_ms} ms`);

  const logs = await developer.GET("/v1/executions/{id}/logs", {
    params: { path: { id: execution.id }, query: { page_size: 100 } },
  });
  if (!logs.data) throw new Error(explain(logs.error, logs.response));
  for (const line of logs.data.items) console.log(`log #${line.seq} [${line.stream}] ${line.line}`);

  const words = (execution.output as { words?: unknown } | undefined)?.words;
  if (words !== 4) throw new Error(`expected 4 words, got ${JSON.stringify(execution.output)}`);
  console.log("typescript client: ok");
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
