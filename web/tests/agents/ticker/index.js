'use strict';

// ticker: `lines` log lines, `pause_ms` apart, with a progress report after each.
module.exports = async (inputs, ctx) => {
  const lines = inputs.lines ?? 3;
  const pause = inputs.pause_ms ?? 1500;
  for (let i = 1; i <= lines; i++) {
    console.log(`tick ${i} of ${lines}`);
    ctx.progress(i / lines, `tick ${i}`);
    await new Promise((resolve) => setTimeout(resolve, pause));
  }
  return { ticks: lines };
};
