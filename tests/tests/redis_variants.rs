//! The Redis scenarios (`resilience_tests::redis_scenarios`) on a Redis Cluster of three
//! primaries and on a TLS server, both started here on free loopback ports; each through
//! the config (`cluster`, `rediss://` with a trusted CA) and through the caller's own
//! client, alternately, so both constructors share state with each other.

use std::time::Duration;

use resilience::redis::{RedisBackend, RedisConfig};
use resilience_tests::redis_scenarios;
use resilience_tests::redis_server::{RedisCluster, RedisServer, unique_prefix};

#[cfg_attr(resilience_no_redis_cluster, ignore = "needs redis-server and redis-cli on PATH")]
#[test]
fn the_redis_scenarios_pass_on_a_cluster() {
    let cluster = RedisCluster::start().unwrap_or_else(|| panic!("no Redis Cluster: see above"));
    let prefix = unique_prefix("cluster");
    let config = RedisConfig::builder(cluster.url())
        .cluster(true)
        .key_prefix(prefix)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    redis_scenarios::run_all_alternating(&config, &|config| {
        let client =
            redis::cluster::ClusterClient::new(cluster.urls()).unwrap_or_else(|e| panic!("{e}"));
        RedisBackend::from_cluster_client(config, client)
    });
}

#[cfg_attr(resilience_no_redis_tls, ignore = "needs redis-server and openssl on PATH")]
#[test]
fn the_redis_scenarios_pass_over_tls() {
    let server = RedisServer::tls().unwrap_or_else(|| panic!("no TLS Redis: see above"));
    assert!(server.url().starts_with("rediss://"), "{}", server.url());
    let root = server.root_cert().unwrap_or_else(|| unreachable!()).to_vec();
    let config = RedisConfig::builder(server.url())
        .tls_root_cert(root.clone())
        .key_prefix(unique_prefix("tls"))
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    redis_scenarios::run_all_alternating(&config, &|config| {
        let certificates =
            redis::TlsCertificates { client_tls: None, root_cert: Some(root.clone()) };
        let client = redis::Client::build_with_tls(server.url(), certificates)
            .unwrap_or_else(|e| panic!("{e}"));
        RedisBackend::from_client(config, client)
    });
}

#[cfg_attr(resilience_no_redis_tls, ignore = "needs redis-server and openssl on PATH")]
#[test]
fn a_tls_server_refuses_a_client_that_does_not_trust_its_certificate() {
    let server = RedisServer::tls().unwrap_or_else(|| panic!("no TLS Redis: see above"));
    let config = RedisConfig::builder(server.url())
        .key_prefix(unique_prefix("untrusted"))
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let backend = RedisBackend::new(config).unwrap_or_else(|e| panic!("{e}"));
    let refused = backend.ping_blocking();
    assert!(
        matches!(&refused, Err(resilience::Error::BackendUnavailable { .. })),
        "a certificate from an unknown CA is refused: {refused:?}"
    );
}
