'use strict';
// Imports an ES module entrypoint for runner.js. Kept in its own file: code that runner.js
// restores from a V8 startup snapshot cannot start a dynamic import itself.
module.exports = (url) => import(url);
