use resilience::rate_limit;

#[derive(Debug)]
enum AppError {
    Resilience(resilience::Error),
}

impl From<resilience::Error> for AppError {
    fn from(e: resilience::Error) -> Self {
        AppError::Resilience(e)
    }
}

struct Shop {
    id: u64,
}

#[rate_limit(per_second = 2, key = shop)]
async fn orders(shop: &Shop) -> Result<u64, AppError> {
    Ok(shop.id)
}

fn main() {
    let _ = orders(&Shop { id: 1 });
}
