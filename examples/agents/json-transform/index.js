'use strict';

// json-transform: picks and renames fields of `inputs.records` according to
// `inputs.mapping` ({ outputField: sourcePath }). Standard library only.

const hasOwn = (obj, key) => Object.prototype.hasOwnProperty.call(obj, key);

function toSegments(path, field) {
  if (typeof path === 'string' && path.length > 0) return path.split('.');
  if (Array.isArray(path) && path.length > 0 && path.every((s) => typeof s === 'string')) return path;
  throw new Error(`mapping.${field} must be a non-empty string or array of strings`);
}

// Follows `segments` through own properties only, so inherited members of
// Object.prototype can never be picked. Returns `found: false` when the path
// does not exist.
function lookup(record, segments) {
  let cur = record;
  for (const seg of segments) {
    if (cur === null || typeof cur !== 'object') return { found: false };
    if (Array.isArray(cur)) {
      if (!/^(0|[1-9][0-9]*)$/.test(seg)) return { found: false };
      const idx = Number(seg);
      if (idx >= cur.length) return { found: false };
      cur = cur[idx];
    } else {
      if (!hasOwn(cur, seg)) return { found: false };
      cur = cur[seg];
    }
  }
  return { found: true, value: cur };
}

module.exports = async (inputs, ctx) => {
  const { records, mapping } = inputs;
  if (!Array.isArray(records)) throw new Error('inputs.records must be an array');
  if (mapping === null || typeof mapping !== 'object' || Array.isArray(mapping)) {
    throw new Error('inputs.mapping must be an object');
  }
  const onMissing = inputs.on_missing === 'null' ? 'null' : 'omit';
  const batchSize = Number.isInteger(inputs.batch_size) && inputs.batch_size > 0 ? inputs.batch_size : 100;

  const plan = Object.keys(mapping).map((field) => ({ field, segments: toSegments(mapping[field], field) }));
  const total = records.length;
  const out = [];
  let missing = 0;

  for (let start = 0; start < total; start += batchSize) {
    const end = Math.min(start + batchSize, total);
    for (let i = start; i < end; i++) {
      const record = records[i];
      if (record === null || typeof record !== 'object' || Array.isArray(record)) {
        throw new Error(`records[${i}] is not an object`);
      }
      // A prototype-free object: an output field named like an Object.prototype
      // member is just an ordinary key.
      const row = Object.create(null);
      for (const { field, segments } of plan) {
        const hit = lookup(record, segments);
        if (hit.found) {
          row[field] = hit.value;
        } else {
          missing++;
          if (onMissing === 'null') row[field] = null;
        }
      }
      out.push(row);
    }
    ctx.progress(end / total, `transformed ${end}/${total} records`);
    // Let the runner forward the progress event before the next batch.
    await new Promise((resolve) => setImmediate(resolve));
  }
  if (total === 0) ctx.progress(1, 'no records');

  console.log(`transformed ${total} records with ${plan.length} fields each (${missing} missing values, on_missing=${onMissing})`);
  return { records: out, count: out.length };
};
