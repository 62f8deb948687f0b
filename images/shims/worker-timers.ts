// Stands in for worker-timers inside the single executable: mqtt.js runs its keepalive
// on timers in a Web Worker only in browsers (mqtt/build/lib/get-timer.js) and on the
// runtime's own otherwise; this gives its 'worker' choice the runtime's timers too, and
// keeps the package's bundled worker script (15 KB) out of the box's memory.
export const setInterval = (callback: () => void, ms: number): NodeJS.Timeout => globalThis.setInterval(callback, ms);
export const clearInterval = (timer: NodeJS.Timeout): void => globalThis.clearInterval(timer);
