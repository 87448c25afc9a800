//! The sea-orm-migration command line: `cargo run -p migration --features cli -- up`.
//! It reads `DATABASE_URL` (or a `.env` file).

use sea_orm_migration::prelude::*;

#[tokio::main]
async fn main() {
    cli::run_cli(migration::Migrator).await;
}
