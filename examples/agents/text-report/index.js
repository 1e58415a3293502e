'use strict';

// text-report: an orchestrator. It calls two other agents of the marketplace through
// ctx.call (declared in agent.json's "dependencies"), in parallel, and combines what they
// return. Each call is its own execution, paid from the buyer's mandate for this run; this
// agent's developer earns the orchestrator's 10% of each.

module.exports = async (inputs, ctx) => {
  ctx.progress(0.1, 'calling word-count and sentiment');
  const [counted, mood] = await Promise.all([
    ctx.call('word-count', { text: inputs.text, top_n: 1 }),
    ctx.call('sentiment', { text: inputs.text }),
  ]);
  ctx.progress(0.9, 'combining');
  const top = counted.top_words.length > 0 ? counted.top_words[0].word : null;
  const frequent = top === null ? '' : ` (most frequent: "${top}")`;
  return {
    summary: `${counted.words} words${frequent}; the mood is ${mood.label} (${mood.score}).`,
    words: counted.words,
    top_word: top,
    mood: mood.label,
    score: mood.score,
  };
};
