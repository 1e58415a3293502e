//! Private instances of the services the platform depends on (RabbitMQ, PostgreSQL, a Docker
//! engine), started by a test for itself so that it can stop, kill and restart them without
//! disturbing the shared ones other tests use. Each is torn down when dropped, also when the
//! test panics, and each start is awaited by speaking the service's own protocol.

mod docker;
mod ports;
mod postgres;
mod process;
mod rabbitmq;

pub use docker::PrivateDocker;
pub use postgres::PrivatePostgres;
pub use rabbitmq::{PrivateRabbitMq, amqp_handshake, queue_depth};
