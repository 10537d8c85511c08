// Typed errors: throw one and the host knows whether to retry.
//
// Anything else thrown is a bug in the plugin: the host gets an `internal`
// error whose message carries the JavaScript stack.

/** Base of the typed errors; `kind` is the WIT `error-kind`. */
export class SluiceError extends Error {
  get kind() {
    return 'internal';
  }
  get name() {
    return this.constructor.name;
  }
}

/** The config is wrong: fix the job file. Never retried. */
export class ConfigError extends SluiceError {
  get kind() {
    return 'config';
  }
}

/** Credentials were refused. Never retried. */
export class AuthError extends SluiceError {
  get kind() {
    return 'auth';
  }
}

/** Worth retrying: a dropped connection, a throttled request. */
export class TransientError extends SluiceError {
  get kind() {
    return 'transient';
  }
}

/** The data is bad: a malformed row, a value that does not fit. */
export class DataError extends SluiceError {
  get kind() {
    return 'data';
  }
}

/** A bug in the plugin, said on purpose. */
export class InternalError extends SluiceError {}

const BY_KIND = {
  config: ConfigError,
  auth: AuthError,
  transient: TransientError,
  data: DataError,
};

/** The typed error for a WIT `error` record a host capability returned. */
export function fromWit(error) {
  const Kind = BY_KIND[error.kind] ?? InternalError;
  return new Kind(error.message);
}

/** Call a host import; a WIT `error` it returns (thrown by the bindings,
 * as the thrown value or its `payload`) is thrown as the typed error. */
export function callHost(body) {
  try {
    return body();
  } catch (e) {
    const error = e?.payload ?? e;
    if (error && typeof error.kind === 'string' && typeof error.message === 'string') throw fromWit(error);
    throw e;
  }
}
