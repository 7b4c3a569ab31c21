//! A resolver that answers from a table: the test double for unit tests.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::RwLock;

use async_trait::async_trait;

use crate::{DnsError, MailRoute, Mx, Resolver, plain, reverse_name, route_from};

/// Answers from tables set by the test. A name absent from every table does
/// not exist; a name marked with [`StaticResolver::fail`] answers a
/// temporary failure.
#[derive(Debug, Default)]
pub struct StaticResolver {
    mx: RwLock<HashMap<String, Vec<Mx>>>,
    ips: RwLock<HashMap<String, Vec<IpAddr>>>,
    txt: RwLock<HashMap<String, Vec<String>>>,
    cnames: RwLock<HashMap<String, String>>,
    ptrs: RwLock<HashMap<String, Vec<String>>>,
    failing: RwLock<Vec<String>>,
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl StaticResolver {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an MX record; an empty or "." exchange is a null MX.
    pub fn mx(self, domain: &str, preference: u16, exchange: &str) -> Self {
        write(&self.mx).entry(plain(domain)).or_default().push(Mx {
            preference,
            exchange: plain(exchange),
        });
        self
    }

    pub fn ip(self, host: &str, ip: IpAddr) -> Self {
        write(&self.ips).entry(plain(host)).or_default().push(ip);
        self
    }

    pub fn txt(self, name: &str, value: &str) -> Self {
        write(&self.txt).entry(plain(name)).or_default().push(value.to_owned());
        self
    }

    pub fn cname(self, name: &str, target: &str) -> Self {
        write(&self.cnames).insert(plain(name), plain(target));
        self
    }

    /// Adds a PTR record for `ip` naming `host` (at [`reverse_name`]).
    pub fn ptr(self, ip: IpAddr, host: &str) -> Self {
        write(&self.ptrs).entry(reverse_name(ip)).or_default().push(plain(host));
        self
    }

    /// Every question about `name` fails temporarily.
    pub fn fail(self, name: &str) -> Self {
        write(&self.failing).push(plain(name));
        self
    }

    fn exists(&self, name: &str) -> bool {
        read(&self.mx).contains_key(name)
            || read(&self.ips).contains_key(name)
            || read(&self.txt).contains_key(name)
            || read(&self.cnames).contains_key(name)
            || read(&self.ptrs).contains_key(name)
    }

    /// The records found, or why there are none: the name exists without
    /// records of this type, or does not exist.
    fn answer<T>(&self, name: String, kind: &'static str, records: Vec<T>) -> Result<Vec<T>, DnsError> {
        match records.is_empty() {
            false => Ok(records),
            true if self.exists(&name) => Err(DnsError::NoRecords(name, kind)),
            true => Err(DnsError::NoSuchName(name)),
        }
    }

    fn check(&self, name: &str) -> Result<String, DnsError> {
        let name = plain(name);
        if read(&self.failing).contains(&name) {
            return Err(DnsError::Temporary(name, "configured to fail".into()));
        }
        Ok(name)
    }
}

#[async_trait]
impl Resolver for StaticResolver {
    async fn mail_route(&self, domain: &str) -> Result<MailRoute, DnsError> {
        let name = self.check(domain)?;
        match read(&self.mx).get(&name) {
            Some(records) => Ok(route_from(records.clone())),
            None if self.exists(&name) => Ok(MailRoute::Implicit),
            None => Err(DnsError::NoSuchName(name)),
        }
    }

    async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, DnsError> {
        let name = self.check(host)?;
        match read(&self.ips).get(&name) {
            Some(ips) => Ok(ips.clone()),
            None if self.exists(&name) => Err(DnsError::NoRecords(name, "A/AAAA")),
            None => Err(DnsError::NoSuchName(name)),
        }
    }

    async fn cname(&self, name: &str) -> Result<String, DnsError> {
        let name = self.check(name)?;
        match read(&self.cnames).get(&name) {
            Some(t) => Ok(t.clone()),
            None if self.exists(&name) => Err(DnsError::NoRecords(name, "CNAME")),
            None => Err(DnsError::NoSuchName(name)),
        }
    }

    async fn ipv4(&self, host: &str) -> Result<Vec<Ipv4Addr>, DnsError> {
        let name = self.check(host)?;
        let ips: Vec<_> = read(&self.ips)
            .get(&name)
            .into_iter()
            .flatten()
            .filter_map(|ip| match ip {
                IpAddr::V4(v4) => Some(*v4),
                IpAddr::V6(_) => None,
            })
            .collect();
        self.answer(name, "A", ips)
    }

    async fn ipv6(&self, host: &str) -> Result<Vec<Ipv6Addr>, DnsError> {
        let name = self.check(host)?;
        let ips: Vec<_> = read(&self.ips)
            .get(&name)
            .into_iter()
            .flatten()
            .filter_map(|ip| match ip {
                IpAddr::V6(v6) => Some(*v6),
                IpAddr::V4(_) => None,
            })
            .collect();
        self.answer(name, "AAAA", ips)
    }

    async fn mx(&self, domain: &str) -> Result<Vec<Mx>, DnsError> {
        let name = self.check(domain)?;
        let records = read(&self.mx).get(&name).cloned().unwrap_or_default();
        self.answer(name, "MX", records)
    }

    async fn ptr(&self, ip: IpAddr) -> Result<Vec<String>, DnsError> {
        let name = self.check(&reverse_name(ip))?;
        let names = read(&self.ptrs).get(&name).cloned().unwrap_or_default();
        self.answer(name, "PTR", names)
    }

    async fn txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        let name = self.check(name)?;
        match read(&self.txt).get(&name) {
            Some(t) => Ok(t.clone()),
            None if self.exists(&name) => Err(DnsError::NoRecords(name, "TXT")),
            None => Err(DnsError::NoSuchName(name)),
        }
    }
}
