//! Security groups: validated CRUD of groups and rules, and attaching groups
//! to clusters. (Enforcement at the endpoints is the data paths' job.)

use ipnet::IpNet;
use marina_common::model::*;
use marina_common::{Error, ids, time_fmt};
use marina_store::{GroupDeletion, Page, PageRequest};

use crate::Marina;
use crate::auth::AuthContext;

/// Parses a rule's CIDR: an IPv4 or IPv6 network without host bits.
pub fn validate_cidr(cidr: &str) -> Result<IpNet, Error> {
    let net: IpNet = cidr.trim().parse().map_err(|_| {
        Error::InvalidRequest(format!(
            "cidr {cidr:?} is not a network: write it like 10.0.0.0/24, 127.0.0.2/32 or fd00::/64"
        ))
    })?;
    if net.trunc() != net {
        return Err(Error::InvalidRequest(format!(
            "cidr {cidr:?} has host bits set; did you mean {}?",
            net.trunc()
        )));
    }
    Ok(net)
}

/// Checks a rule's port range.
pub fn validate_ports(from: u32, to: u32) -> Result<(u16, u16), Error> {
    let ok = |p: u32| (1..=65535).contains(&p);
    if !ok(from) || !ok(to) {
        return Err(Error::InvalidRequest(format!(
            "ports must be between 1 and 65535 (got {from}..{to})"
        )));
    }
    if from > to {
        return Err(Error::InvalidRequest(format!(
            "from_port {from} is greater than to_port {to}"
        )));
    }
    Ok((from as u16, to as u16))
}

impl Marina {
    pub async fn create_security_group(
        &self,
        auth: &AuthContext,
        input: CreateSecurityGroupInput,
    ) -> Result<SecurityGroup, Error> {
        auth.require(Scope::Admin)?;
        ids::validate_name(&input.name).map_err(Error::InvalidRequest)?;
        let description = input.description.unwrap_or_default();
        if description.len() > 1024 {
            return Err(Error::InvalidRequest("description is longer than 1024 bytes".into()));
        }
        let sg = SecurityGroup {
            id: ids::new_id(ids::prefix::SECURITY_GROUP),
            object: "security_group",
            name: input.name.clone(),
            description,
            rules: Vec::new(),
            created_at: time_fmt::now_rfc3339(),
            tenant_id: auth.tenant_id.clone(),
        };
        self.store.create_security_group(&sg).await.map_err(|e| match e {
            marina_store::StoreError::Conflict(_) => {
                Error::Conflict(format!("a security group named {:?} already exists", input.name))
            }
            other => other.into(),
        })?;
        Ok(sg)
    }

    pub async fn security_group(&self, auth: &AuthContext, id: &str) -> Result<SecurityGroup, Error> {
        auth.require(Scope::Read)?;
        self.store
            .get_security_group(&auth.tenant_id, id)
            .await?
            .ok_or_else(|| Error::not_found("security group", id))
    }

    pub async fn list_security_groups(
        &self,
        auth: &AuthContext,
        page: PageRequest<'_>,
    ) -> Result<Page<SecurityGroup>, Error> {
        auth.require(Scope::Read)?;
        Ok(self.store.list_security_groups(&auth.tenant_id, page).await?)
    }

    pub async fn delete_security_group(&self, auth: &AuthContext, id: &str) -> Result<(), Error> {
        auth.require(Scope::Admin)?;
        match self.store.delete_security_group(&auth.tenant_id, id).await? {
            GroupDeletion::Deleted => Ok(()),
            GroupDeletion::NotFound => Err(Error::not_found("security group", id)),
            GroupDeletion::InUse => Err(Error::Conflict(format!(
                "security group {id} is attached to a cluster; detach it (PATCH the cluster) first"
            ))),
        }
    }

    pub async fn add_rule(
        &self,
        auth: &AuthContext,
        sg_id: &str,
        input: CreateRuleInput,
    ) -> Result<SecurityGroupRule, Error> {
        auth.require(Scope::Admin)?;
        let sg = self.security_group(auth, sg_id).await?;
        let net = validate_cidr(&input.cidr)?;
        let (from_port, to_port) = validate_ports(input.from_port, input.to_port)?;
        let rule = SecurityGroupRule {
            id: ids::new_id(ids::prefix::RULE),
            object: "security_group_rule",
            security_group_id: sg.id,
            cidr: net.to_string(),
            from_port,
            to_port,
            created_at: time_fmt::now_rfc3339(),
        };
        self.store.add_rule(&rule).await?;
        self.reconcile.notify_one();
        Ok(rule)
    }

    pub async fn delete_rule(&self, auth: &AuthContext, sg_id: &str, rule_id: &str) -> Result<(), Error> {
        auth.require(Scope::Admin)?;
        let sg = self.security_group(auth, sg_id).await?;
        if !self.store.delete_rule(&sg.id, rule_id).await? {
            return Err(Error::not_found("security group rule", rule_id));
        }
        self.reconcile.notify_one();
        Ok(())
    }

    /// Checks that every id names a group of the tenant (400 otherwise).
    pub(crate) async fn check_security_groups(&self, tenant_id: &str, sg_ids: &[String]) -> Result<(), Error> {
        for id in sg_ids {
            if self.store.get_security_group(tenant_id, id).await?.is_none() {
                return Err(Error::InvalidRequest(format!("security group {id:?} does not exist")));
            }
        }
        Ok(())
    }

    /// The ids of the groups attached to a cluster.
    pub async fn cluster_security_group_ids(&self, cluster_id: &str) -> Result<Vec<String>, Error> {
        Ok(self.store.cluster_security_groups(cluster_id).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_are_networks_without_host_bits() {
        assert_eq!(validate_cidr("127.0.0.2/32").unwrap().to_string(), "127.0.0.2/32");
        assert_eq!(validate_cidr("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(validate_cidr("fd00::/64").unwrap().to_string(), "fd00::/64");
        let e = validate_cidr("10.0.0.1/24").unwrap_err().to_string();
        assert!(e.contains("host bits") && e.contains("10.0.0.0/24"), "{e}");
        let e = validate_cidr("fd00::1/64").unwrap_err().to_string();
        assert!(e.contains("fd00::/64"), "{e}");
        for bad in ["10.0.0.0", "10.0.0.0/33", "banana", "", "::/129"] {
            assert!(validate_cidr(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn port_ranges() {
        assert_eq!(validate_ports(3306, 3306).unwrap(), (3306, 3306));
        assert_eq!(validate_ports(1, 65535).unwrap(), (1, 65535));
        assert!(validate_ports(0, 10).is_err());
        assert!(validate_ports(10, 65536).is_err());
        assert!(validate_ports(20, 10).unwrap_err().to_string().contains("greater"));
    }
}
