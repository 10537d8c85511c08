// Logging to the host: lines appear in `sluice run`'s log, tagged with the
// plugin's name. Natively (tests) they go to stderr.

import { host } from './host.js';

export const trace = (message) => host.log('trace', String(message));
export const debug = (message) => host.log('debug', String(message));
export const info = (message) => host.log('info', String(message));
export const warn = (message) => host.log('warn', String(message));
export const error = (message) => host.log('error', String(message));
