//! Endpoints on every host (issue 23, kube-proxy's model): the control
//! plane sends each agent the endpoint plan it applies itself — routes
//! from each cluster's writer and reader addresses to the nodes behind
//! them, wherever they run, with their security groups, and the fenced
//! nodes — and the agent programs it with a forwarding kernel data path
//! (`NftDataPath::forwarding`): a client whose route to an endpoint
//! address goes through any host reaches the cluster.
//!
//! Node-port guards cross as sources, not socket owners: the node ports of
//! nodes on agent hosts admit new connections from the fleet's hosts
//! (`peers`: replication, and endpoints on other hosts, which masquerade)
//! and from the control plane (the agent adds the addresses its own calls
//! come from); a client elsewhere reaches nodes through endpoints only.
//! The control plane's host guards its own nodes by socket owner.

use std::net::SocketAddrV4;

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use marina_endpoints::{EndpointPlan, Fence, NodeGuard, Route};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `PUT /v1/endpoints`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointsBody {
    pub routes: Vec<RouteBody>,
    pub fenced: Vec<FenceBody>,
    /// Node ports on agent hosts and who may connect to them directly.
    pub guards: Vec<GuardBody>,
}

/// A host's node ports and the machines admitted to them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GuardBody {
    /// The address the nodes listen on.
    pub host: String,
    pub ports: Vec<u16>,
    /// Networks admitted (the fleet's hosts; the agent adds the control plane).
    pub peers: Vec<String>,
}

/// One endpoint address and where it leads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteBody {
    /// `address:port` clients connect to.
    pub listen: String,
    /// Node `address:port`s (several: round-robin; none: refuse).
    pub backends: Vec<String>,
    /// Connections to a node that stops being a backend are reset.
    pub exclusive: bool,
    /// Source networks admitted (security groups).
    pub allowed: Vec<String>,
}

/// A node cut off at the data path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FenceBody {
    pub node: String,
    pub writer: Option<String>,
}

impl EndpointsBody {
    /// The part of `plan` every host applies: routes, fences, and the
    /// guards of nodes on agent hosts (`agent_hosts`), admitting `peers`.
    pub fn from_plan(plan: &EndpointPlan, agent_hosts: &[Ipv4Addr], peers: &[Ipv4Net]) -> Self {
        EndpointsBody {
            guards: plan
                .guards
                .iter()
                .filter(|g| agent_hosts.contains(&g.host))
                .map(|g| GuardBody {
                    host: g.host.to_string(),
                    ports: g.ports.clone(),
                    peers: peers.iter().map(ToString::to_string).collect(),
                })
                .collect(),
            routes: plan
                .routes
                .iter()
                .map(|r| RouteBody {
                    listen: r.listen.to_string(),
                    backends: r.backends.iter().map(ToString::to_string).collect(),
                    exclusive: r.exclusive,
                    allowed: r.allowed.iter().map(ToString::to_string).collect(),
                })
                .collect(),
            fenced: plan
                .fenced
                .iter()
                .map(|f| FenceBody {
                    node: f.node.to_string(),
                    writer: f.writer.map(|w| w.to_string()),
                })
                .collect(),
        }
    }

    /// The plan to apply, the control plane's addresses (`control_plane`)
    /// admitted to node ports too; an address or network that does not
    /// parse is an error (nothing of the plan is applied).
    pub fn into_plan(self, control_plane: &[Ipv4Addr]) -> Result<EndpointPlan, String> {
        let addr = |s: &str| {
            s.parse::<SocketAddrV4>()
                .map_err(|_| format!("{s:?} is not an IPv4 address:port"))
        };
        let routes = self
            .routes
            .iter()
            .map(|r| {
                Ok(Route {
                    listen: addr(&r.listen)?,
                    backends: r.backends.iter().map(|b| addr(b)).collect::<Result<_, String>>()?,
                    exclusive: r.exclusive,
                    allowed: r
                        .allowed
                        .iter()
                        .map(|n| n.parse().map_err(|_| format!("{n:?} is not an IPv4 network")))
                        .collect::<Result<_, String>>()?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let fenced = self
            .fenced
            .iter()
            .map(|f| {
                Ok(Fence {
                    node: addr(&f.node)?,
                    // The control plane manages nodes on agent hosts over TCP.
                    remote: true,
                    writer: f.writer.as_deref().map(addr).transpose()?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let net = |n: &String| {
            n.parse::<Ipv4Net>()
                .map_err(|_| format!("{n:?} is not an IPv4 network"))
        };
        let guards = self
            .guards
            .iter()
            .map(|g| {
                let mut peers = g.peers.iter().map(net).collect::<Result<Vec<_>, String>>()?;
                peers.extend(control_plane.iter().map(|a| Ipv4Net::from(*a)));
                Ok(NodeGuard {
                    host: g
                        .host
                        .parse()
                        .map_err(|_| format!("{:?} is not an IPv4 address", g.host))?,
                    ports: g.ports.clone(),
                    uids: Vec::new(),
                    peers,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(EndpointPlan {
            routes,
            guards,
            fenced,
            control_plane: marina_endpoints::ControlPlane {
                uids: Vec::new(),
                addrs: control_plane.to_vec(),
            },
        })
    }

    /// The digest both sides compare (`wire::digest`).
    pub fn digest(&self) -> String {
        crate::wire::digest(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_crosses_with_agent_hosts_guards_and_bad_addresses_are_refused() {
        let plan = EndpointPlan {
            routes: vec![Route {
                listen: "203.0.113.1:3306".parse().unwrap(),
                backends: vec!["198.51.100.12:21000".parse().unwrap()],
                exclusive: true,
                allowed: vec!["0.0.0.0/0".parse().unwrap()],
            }],
            guards: vec![
                marina_endpoints::NodeGuard {
                    host: "127.0.0.1".parse().unwrap(),
                    ports: vec![21000],
                    uids: vec![0],
                    peers: vec![],
                },
                marina_endpoints::NodeGuard {
                    host: "198.51.100.12".parse().unwrap(),
                    ports: vec![21000, 21002],
                    uids: vec![0],
                    peers: vec![],
                },
            ],
            fenced: vec![Fence {
                node: "198.51.100.11:21001".parse().unwrap(),
                remote: true,
                writer: Some("203.0.113.1:3306".parse().unwrap()),
            }],
            control_plane: Default::default(),
        };
        let hosts: Vec<Ipv4Addr> = vec!["198.51.100.11".parse().unwrap(), "198.51.100.12".parse().unwrap()];
        let peers: Vec<Ipv4Net> = hosts.iter().map(|a| Ipv4Net::from(*a)).collect();
        let body = EndpointsBody::from_plan(&plan, &hosts, &peers);
        let cp: Ipv4Addr = "198.51.100.2".parse().unwrap();
        let back = body.clone().into_plan(&[cp]).unwrap();
        assert_eq!((back.routes, back.fenced), (plan.routes.clone(), plan.fenced.clone()));
        // The control plane manages the agent's nodes over TCP: its
        // addresses pass their fences.
        assert_eq!(back.control_plane.addrs, vec![cp]);
        // Only the agent host's guard crosses, by source: the fleet's
        // hosts and the control plane, no socket owner.
        assert_eq!(back.guards.len(), 1, "{:?}", back.guards);
        let g = &back.guards[0];
        assert_eq!(
            (g.host.to_string(), g.ports.clone()),
            ("198.51.100.12".into(), vec![21000, 21002])
        );
        assert!(g.uids.is_empty());
        assert_eq!(g.peers.len(), 3);
        assert!(g.peers.contains(&Ipv4Net::from(cp)));
        assert_eq!(body.digest(), EndpointsBody::from_plan(&plan, &hosts, &peers).digest());
        for bad in ["203.0.113.1", "x:1", "[::1]:3306"] {
            let mut b = body.clone();
            b.routes[0].listen = bad.into();
            assert!(b.into_plan(&[]).is_err(), "{bad}");
        }
        let mut b = body.clone();
        b.routes[0].allowed = vec!["10.0.0.1/33".into()];
        assert!(b.into_plan(&[]).is_err());
        let mut b = body;
        b.guards[0].peers = vec!["198.51.100.0/99".into()];
        assert!(b.into_plan(&[]).is_err());
    }
}
