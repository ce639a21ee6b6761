//! The Redis harness itself: the faults the fleet tests rely on are real ones.

use std::time::Duration;

use crate::common::redis::{RedisServer, Reply};

#[test]
fn a_paused_server_answers_nothing_until_resumed() {
    let mut redis = RedisServer::start();
    assert_eq!(redis.url(), format!("redis://127.0.0.1:{}", redis.port()));
    assert_eq!(
        redis.command(&["SET", "k", "v"]),
        Ok(Reply::Status("OK".into()))
    );
    redis.pause();
    assert!(
        !redis.ping(Duration::from_millis(300)),
        "a stopped server answered"
    );
    redis.resume();
    assert!(redis.ping(Duration::from_secs(2)));
    assert_eq!(
        redis.command(&["GET", "k"]),
        Ok(Reply::Bulk(Some(b"v".to_vec())))
    );
}

#[test]
fn a_killed_server_refuses_and_a_restarted_one_is_empty_on_the_same_port() {
    let mut redis = RedisServer::start();
    let port = redis.port();
    redis.command(&["SET", "k", "v"]).unwrap();
    redis.kill();
    assert!(
        redis.command(&["PING"]).is_err(),
        "a killed server answered"
    );
    redis.restart();
    assert_eq!(redis.port(), port);
    assert_eq!(redis.command(&["GET", "k"]), Ok(Reply::Bulk(None)));
    assert_eq!(redis.command(&["DBSIZE"]), Ok(Reply::Integer(0)));
}

#[test]
fn a_paused_server_is_restarted_and_dropping_it_removes_the_process() {
    let mut redis = RedisServer::start();
    redis.pause();
    redis.restart();
    assert!(redis.ping(Duration::from_secs(2)));
    let pid = redis.pid();
    drop(redis);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "redis-server {pid} outlived its harness"
    );
}
