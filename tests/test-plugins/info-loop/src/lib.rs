//! A source whose `info()` never returns: the host must give up on it at
//! the deadline, in whatever command loads it.

use schemars::JsonSchema;
use serde::Deserialize;
use sluice_sdk::{Info, Partition, Reader, Result, Source, StreamInfo, export_source};

/// No settings.
#[derive(Deserialize, JsonSchema)]
pub struct Config {}

/// The plugin.
pub struct InfoLoop;

impl Source for InfoLoop {
    type Config = Config;
    type Reader = Never;

    fn info() -> Info {
        let mut x: u64 = 0;
        loop {
            x = std::hint::black_box(x.wrapping_add(1));
        }
    }

    fn discover(_config: &Config) -> Result<Vec<StreamInfo>> {
        Ok(Vec::new())
    }

    fn open(_config: Config, _partition: Partition, _state: Option<String>) -> Result<Never> {
        Ok(Never)
    }
}

/// Never opened: `info()` never returns.
pub struct Never;

impl Reader for Never {
    fn next(&mut self) -> Result<Option<sluice_sdk::Event>> {
        Ok(None)
    }
}

export_source!(InfoLoop);
