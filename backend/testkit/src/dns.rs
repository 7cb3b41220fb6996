//! An authoritative DNS server for the zone `test.` (hickory-server, in the test process, over UDP
//! on a free loopback port): what the origin's `DNS_RESOLVER` points at in tests of domain
//! verification. Records change while it runs, so tests can take a domain's record away.

use hickory_server::net::runtime::TokioRuntimeProvider;
use hickory_server::proto::rr::rdata::{A, SOA, TXT};
use hickory_server::proto::rr::{LowerName, Name, RData, Record, RecordType, RrKey};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneHandler, ZoneType};
use hickory_server::Server;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use tokio::net::UdpSocket;

/// The zone every test name lives in.
pub const ZONE: &str = "test.";

const SERIAL: u32 = 1;

pub struct DnsServer {
    /// Where it listens (UDP).
    pub addr: SocketAddr,
    zone: Arc<InMemoryZoneHandler<TokioRuntimeProvider>>,
    _server: Server<Catalog>,
}

fn name(raw: &str) -> Name {
    let mut name = Name::from_ascii(raw).expect("a DNS name");
    name.set_fqdn(true);
    name
}

impl DnsServer {
    /// Serves the zone `test.` with nothing but its SOA record.
    pub async fn start() -> Self {
        let origin = name(ZONE);
        let mut zone = InMemoryZoneHandler::<TokioRuntimeProvider>::empty(
            origin.clone(),
            ZoneType::Primary,
            AxfrPolicy::Deny,
        );
        let soa = SOA::new(
            name("ns.test."),
            name("hostmaster.test."),
            SERIAL,
            3600,
            600,
            86400,
            0,
        );
        assert!(zone.upsert_mut(
            Record::from_rdata(origin.clone(), 0, RData::SOA(soa)),
            SERIAL
        ));
        let zone = Arc::new(zone);
        let mut catalog = Catalog::new();
        catalog.upsert(
            LowerName::new(&origin),
            vec![Arc::clone(&zone) as Arc<dyn ZoneHandler>],
        );
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind DNS");
        let addr = socket.local_addr().expect("DNS address");
        let mut server = Server::new(catalog);
        server.register_socket(socket);
        Self {
            addr,
            zone,
            _server: server,
        }
    }

    /// Replaces the records of `owner`'s `kind` with `records` (none: removes them).
    async fn set(&self, owner: &str, kind: RecordType, records: Vec<RData>) {
        let owner = name(owner);
        self.zone
            .records_mut()
            .await
            .remove(&RrKey::new(LowerName::new(&owner), kind));
        for data in records {
            assert!(
                self.zone
                    .upsert(Record::from_rdata(owner.clone(), 0, data), SERIAL)
                    .await
            );
        }
    }

    /// Sets the TXT records of `owner` (e.g. `_smo1-challenge.go.brand.test`), one per value;
    /// no values removes them.
    pub async fn set_txt(&self, owner: &str, values: &[&str]) {
        let records = values
            .iter()
            .map(|v| RData::TXT(TXT::new(vec![(*v).to_owned()])))
            .collect();
        self.set(owner, RecordType::TXT, records).await;
    }

    /// Gives `owner` an A record, so it exists (NOERROR) without any TXT record.
    pub async fn set_a(&self, owner: &str) {
        self.set(
            owner,
            RecordType::A,
            vec![RData::A(A(Ipv4Addr::new(192, 0, 2, 1)))],
        )
        .await;
    }
}
