'use strict';

// word-count: counts words, lines and characters of `inputs.text` and returns
// the most frequent words. Standard library only.

// A word is a run of letters or digits, optionally joined by an apostrophe or
// a hyphen ("don't", "well-known").
const WORD = /[\p{L}\p{N}]+(?:['\u2019-][\p{L}\p{N}]+)*/gu;

function countLines(text) {
  if (text.length === 0) return 0;
  const breaks = text.split(/\r\n|\r|\n/).length - 1;
  // A trailing line break ends the last line; it does not start a new one.
  const endsWithBreak = /(\r\n|\r|\n)$/.test(text);
  return endsWithBreak ? breaks : breaks + 1;
}

module.exports = async (inputs, ctx) => {
  const text = inputs.text;
  if (typeof text !== 'string') {
    throw new Error('inputs.text must be a string');
  }
  const topN = Number.isInteger(inputs.top_n) ? Math.min(Math.max(inputs.top_n, 1), 100) : 10;

  const words = text.match(WORD) || [];
  const lines = countLines(text);
  // Unicode code points, so an emoji counts as one character.
  const characters = Array.from(text).length;

  ctx.progress(0.5, 'counting');

  const counts = new Map();
  for (const w of words) {
    const key = w.toLowerCase();
    counts.set(key, (counts.get(key) || 0) + 1);
  }
  const topWords = Array.from(counts, ([word, count]) => ({ word, count }))
    .sort((a, b) => b.count - a.count || (a.word < b.word ? -1 : a.word > b.word ? 1 : 0))
    .slice(0, topN);

  console.log(`counted ${words.length} words (${counts.size} distinct) in ${lines} lines`);
  ctx.progress(1, 'done');

  return { words: words.length, lines, characters, top_words: topWords };
};
