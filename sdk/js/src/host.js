// Where the capabilities come from. Inside the component the SDK's glue
// (src/component/host.js) fills this with the contract's imports; in
// native tests `@sluice/sdk/testing` fills it with local stand-ins. The
// split keeps Node's modules out of the component and the contract's out
// of Node.

/** The current implementations of `log`, `blob` and `http`. */
export const host = {
  log: (level, message) => console.error(`[${level}] ${message}`),
  blob: null,
  http: null,
};

/** Install implementations (the component glue and the test harness do). */
export function installHost(parts) {
  Object.assign(host, parts);
}
