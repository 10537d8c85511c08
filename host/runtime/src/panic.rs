//! Panics, caught: what a panic said and where, for the error that fails
//! the task in its place.
//!
//! A panic in the host (a bug in Sluice or in a library it calls) must end
//! as a failed task naming the plugin and the call, never as a dead process
//! or a stream that looks finished. The runtime and the pipeline catch
//! panics at their boundaries; [`message`] turns the payload into text, and
//! [`install_hook`] (called once by the binary) remembers each panic's
//! location so the text can say where it happened.

use std::any::Any;
use std::cell::RefCell;

thread_local! {
    /// Where the last panic on this thread happened, set by the hook.
    static LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Route panics through `tracing` and remember where each happened, so a
/// caught panic's error can name the source line. Call once, at start.
pub fn install_hook() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()));
        let text = payload_text(info.payload());
        match &location {
            Some(at) => tracing::error!("panic at {at}: {text}"),
            None => tracing::error!("panic: {text}"),
        }
        LOCATION.with(|l| *l.borrow_mut() = location);
    }));
}

/// What a caught panic said, with where it happened when the hook saw it.
pub fn message(payload: &(dyn Any + Send)) -> String {
    let text = payload_text(payload);
    match LOCATION.with(|l| l.borrow_mut().take()) {
        Some(at) => format!("{text} (at {at})"),
        None => text,
    }
}

fn payload_text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with no message".to_string()
    }
}

/// Run `f`, turning a panic into `Err` with its [`message`].
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|p| message(&*p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caught_panic_says_what_it_said() {
        let err = catch(|| -> u32 { panic!("boom {}", 7) }).unwrap_err();
        assert!(err.starts_with("boom 7"), "{err}");
        assert_eq!(catch(|| 3).unwrap(), 3);
    }
}
