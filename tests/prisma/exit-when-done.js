// Preloaded into the Prisma CLI by the tests (NODE_OPTIONS=--require): timers of 5 s or more no longer
// keep the process alive. `migrate deploy` and `migrate resolve` finish their work in under a second,
// then a 10 s timer inside schema-engine-wasm holds the process open; the work and the exit code are
// the same without the wait.
'use strict';
const setTimeoutOriginal = global.setTimeout;
global.setTimeout = function setTimeoutUnrefLong(callback, ms, ...rest) {
  const timer = setTimeoutOriginal(callback, ms, ...rest);
  if (ms >= 5000 && timer && typeof timer.unref === 'function') timer.unref();
  return timer;
};
