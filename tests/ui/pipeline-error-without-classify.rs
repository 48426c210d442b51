use resilience::{Error, Pipeline, Preset};

#[derive(Debug)]
enum ShopError {
    Resilience(Error),
}

impl From<Error> for ShopError {
    fn from(e: Error) -> Self {
        ShopError::Resilience(e)
    }
}

fn main() {
    let api = Pipeline::from_config("ui-classify", &Preset::Api.config()).unwrap();
    let _: Result<u32, ShopError> = api.call_blocking(|| Ok(1));
}
