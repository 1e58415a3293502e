//! A fresh PostgreSQL database per test, on the server of `FRAMEOS_TEST_POSTGRES_URL`.

use sea_orm::{ConnectionTrait, Database};

pub struct TestDatabase {
    pub url: String,
    admin_url: String,
    name: String,
}

pub(crate) fn server_url() -> String {
    std::env::var("FRAMEOS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

impl TestDatabase {
    pub async fn create() -> anyhow::Result<TestDatabase> {
        Self::create_on(&server_url()).await
    }

    /// A fresh database on the server of `admin_url` (any database of that server).
    pub async fn create_on(admin_url: &str) -> anyhow::Result<TestDatabase> {
        let admin_url = admin_url.to_string();
        let name = format!("frameos_it_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(&admin_url).await?;
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await?;
        admin.close().await?;
        let base = admin_url
            .rsplit_once('/')
            .map(|(base, _)| base.to_string())
            .unwrap_or(admin_url.clone());
        Ok(TestDatabase {
            url: format!("{base}/{name}"),
            admin_url,
            name,
        })
    }

    pub async fn drop_database(self) -> anyhow::Result<()> {
        let admin = Database::connect(&self.admin_url).await?;
        admin
            .execute_unprepared(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await?;
        admin.close().await?;
        Ok(())
    }
}
