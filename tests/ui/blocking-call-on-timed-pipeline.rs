use std::time::Duration;

use resilience::{Error, Pipeline, Preset};

fn main() {
    let timed = Pipeline::new().with_timeout(Duration::from_secs(1));
    let _: Result<u32, Error> = timed.call(|| Ok(1));

    let preset = Pipeline::from_config("ui-preset", &Preset::Api.config()).unwrap();
    let _: Result<u32, Error> = preset.call(|| Ok(2));
}
