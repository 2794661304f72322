//! Endpoints on every host (issue 23, kube-proxy's model): the control
//! plane sends each agent the endpoint plan it applies itself — routes
//! from each cluster's writer and reader addresses to the nodes behind
//! them, wherever they run, with their security groups, and the fenced
//! nodes — and the agent programs it with a forwarding kernel data path
//! (`NftDataPath::forwarding`): a client whose route to an endpoint
//! address goes through any host reaches the cluster.
//!
//! Node-port guards (by socket owner) are the control plane's host's
//! own and do not cross.

use std::net::SocketAddrV4;

use marina_endpoints::{EndpointPlan, Fence, Route};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `PUT /v1/endpoints`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointsBody {
    pub routes: Vec<RouteBody>,
    pub fenced: Vec<FenceBody>,
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
    /// The part of `plan` every host applies (no node-port guards).
    pub fn from_plan(plan: &EndpointPlan) -> Self {
        EndpointsBody {
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

    /// The plan to apply; an address or network that does not parse is
    /// an error (nothing of the plan is applied).
    pub fn into_plan(self) -> Result<EndpointPlan, String> {
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
                    writer: f.writer.as_deref().map(addr).transpose()?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(EndpointPlan {
            routes,
            guards: Vec::new(),
            fenced,
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
    fn a_plan_crosses_without_guards_and_bad_addresses_are_refused() {
        let plan = EndpointPlan {
            routes: vec![Route {
                listen: "203.0.113.1:3306".parse().unwrap(),
                backends: vec!["198.51.100.12:21000".parse().unwrap()],
                exclusive: true,
                allowed: vec!["0.0.0.0/0".parse().unwrap()],
            }],
            guards: vec![marina_endpoints::NodeGuard {
                host: "127.0.0.1".parse().unwrap(),
                ports: vec![21000],
                uids: vec![0],
            }],
            fenced: vec![Fence {
                node: "198.51.100.11:21001".parse().unwrap(),
                writer: Some("203.0.113.1:3306".parse().unwrap()),
            }],
        };
        let body = EndpointsBody::from_plan(&plan);
        let back = body.clone().into_plan().unwrap();
        assert_eq!((back.routes, back.fenced), (plan.routes.clone(), plan.fenced.clone()));
        assert!(back.guards.is_empty());
        assert_eq!(body.digest(), EndpointsBody::from_plan(&plan).digest());
        for bad in ["203.0.113.1", "x:1", "[::1]:3306"] {
            let mut b = body.clone();
            b.routes[0].listen = bad.into();
            assert!(b.into_plan().is_err(), "{bad}");
        }
        let mut b = body;
        b.routes[0].allowed = vec!["10.0.0.1/33".into()];
        assert!(b.into_plan().is_err());
    }
}
