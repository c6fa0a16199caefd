//! A loopback HTTP proxy between the real SDK and the test S3 server that fails the way
//! networks and servers do: 500 and 503 SlowDown answers, and connections reset in the middle
//! of a response body. Each rule fires on the first `times` requests it matches, then lets
//! requests through; `unexercised` lets a test insist that every planned fault happened.
//! Every request is logged (method, path and query, header names, and the status answered), so
//! a test can assert exactly which requests a run made.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and S3 error code instead of forwarding.
    Answer(u16, &'static str),
    /// Forward, then send only half of the response body and drop the connection.
    ResetMidBody,
    /// Forward without this request header: a server that ignores it (the test server must
    /// not check signatures, as moto does not).
    DropHeader(&'static str),
}

#[derive(Debug, Clone)]
pub struct Rule {
    /// `PUT`, `GET`, …; `None` matches any.
    pub method: Option<&'static str>,
    /// Matches when the path and query contain this.
    pub contains: &'static str,
    pub fault: Fault,
    /// How many matching requests fail; `usize::MAX` for all of them.
    pub times: usize,
}

/// A request as the proxy saw it, and the status it answered (0 if the connection failed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    pub method: String,
    /// Path and query, e.g. `/bucket/r/config` or `/bucket?list-type=2&prefix=r%2F`.
    pub target: String,
    /// Names of the request's headers, lowercase.
    pub headers: Vec<String>,
    pub status: u16,
}

impl Logged {
    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(&self.target, |(p, _)| p)
    }

    /// The query string without the `?`, or "".
    pub fn query(&self) -> &str {
        self.target.split_once('?').map_or("", |(_, q)| q)
    }
}

#[derive(Default)]
struct Plan {
    rules: Vec<(Rule, usize)>,
    log: Vec<Logged>,
}

pub struct FaultProxy {
    pub endpoint: String,
    plan: Arc<Mutex<Plan>>,
    _runtime: tokio::runtime::Runtime,
}

impl FaultProxy {
    /// Starts a proxy on 127.0.0.1 in front of `upstream` (an `http://host:port`).
    pub fn start(upstream: &str) -> FaultProxy {
        let (runtime, listener, endpoint) = super::s3::listen_on_loopback();
        let plan = Arc::new(Mutex::new(Plan::default()));
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let upstream = upstream.to_string();
        let served_plan = Arc::clone(&plan);
        runtime.spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let (plan, client, upstream) =
                    (Arc::clone(&served_plan), client.clone(), upstream.clone());
                let service = hyper::service::service_fn(move |req| {
                    handle(req, Arc::clone(&plan), client.clone(), upstream.clone())
                });
                tokio::spawn(async move {
                    let _ = ConnBuilder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(socket), service)
                        .await;
                });
            }
        });
        FaultProxy {
            endpoint,
            plan,
            _runtime: runtime,
        }
    }

    pub fn add(&self, rule: Rule) {
        self.plan.lock().unwrap().rules.push((rule, 0));
    }

    /// Drops every rule: from now on requests pass through.
    pub fn clear(&self) {
        self.plan.lock().unwrap().rules.clear();
    }

    /// How many requests each rule has failed so far, in the order the rules were added.
    pub fn fired(&self) -> Vec<usize> {
        self.plan
            .lock()
            .unwrap()
            .rules
            .iter()
            .map(|(_, n)| *n)
            .collect()
    }

    /// Every request so far, in the order they arrived.
    pub fn requests(&self) -> Vec<Logged> {
        self.plan.lock().unwrap().log.clone()
    }

    /// Forgets the requests logged so far.
    pub fn clear_log(&self) {
        self.plan.lock().unwrap().log.clear();
    }

    /// Rules that never fired: a planned fault that did not happen proves nothing.
    pub fn unexercised(&self) -> Vec<Rule> {
        self.plan
            .lock()
            .unwrap()
            .rules
            .iter()
            .filter(|(_, n)| *n == 0)
            .map(|(r, _)| r.clone())
            .collect()
    }

    fn fault_for(plan: &Mutex<Plan>, method: &str, target: &str) -> Option<Fault> {
        let mut plan = plan.lock().unwrap();
        let (rule, fired) = plan.rules.iter_mut().find(|(r, fired)| {
            *fired < r.times && r.method.is_none_or(|m| m == method) && target.contains(r.contains)
        })?;
        *fired += 1;
        Some(rule.fault)
    }
}

type ProxyBody = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

async fn handle(
    req: Request<Incoming>,
    plan: Arc<Mutex<Plan>>,
    client: Client<HttpConnector, Full<Bytes>>,
    upstream: String,
) -> Result<Response<ProxyBody>, std::io::Error> {
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let method = req.method().as_str().to_string();
    let headers: Vec<String> = req
        .headers()
        .keys()
        .map(|k| k.as_str().to_string())
        .collect();
    let fault = FaultProxy::fault_for(&plan, &method, &target);
    let log = |status: u16| {
        plan.lock().unwrap().log.push(Logged {
            method: method.clone(),
            target: target.clone(),
            headers: headers.clone(),
            status,
        })
    };
    let (mut parts, body) = req.into_parts();
    if let Some(Fault::DropHeader(name)) = fault {
        parts.headers.remove(name);
    }
    let body = body
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    if let Some(Fault::Answer(status, code)) = fault {
        log(status);
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>injected by the test proxy</Message></Error>"
        );
        let mut resp = Response::new(full(Bytes::from(xml)));
        *resp.status_mut() = StatusCode::from_u16(status).unwrap();
        resp.headers_mut()
            .insert("content-type", "application/xml".parse().unwrap());
        return Ok(resp);
    }
    let mut forward = Request::from_parts(parts, Full::new(body));
    *forward.uri_mut() = format!("{upstream}{target}").parse().unwrap();
    let resp = match client.request(forward).await {
        Ok(resp) => resp,
        Err(e) => {
            log(0);
            return Err(std::io::Error::other(e));
        }
    };
    log(resp.status().as_u16());
    let (parts, body) = resp.into_parts();
    let body = body
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    let body = if fault == Some(Fault::ResetMidBody) {
        BrokenBody::new(body.slice(..body.len() / 2)).boxed()
    } else {
        full(body)
    };
    // Content-Length stays as the upstream sent it, so the client knows the body fell short.
    Ok(Response::from_parts(parts, body))
}

fn full(b: Bytes) -> ProxyBody {
    Full::new(b).map_err(|never| match never {}).boxed()
}

/// Yields part of a body, pauses so the head and that part reach the client, then fails,
/// which makes the server drop the connection in the middle of the body.
struct BrokenBody {
    first: Option<Bytes>,
    pause: Pin<Box<tokio::time::Sleep>>,
}

impl BrokenBody {
    fn new(first: Bytes) -> Self {
        BrokenBody {
            first: Some(first),
            pause: Box::pin(tokio::time::sleep(std::time::Duration::from_millis(100))),
        }
    }
}

impl Body for BrokenBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if let Some(b) = self.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(b))));
        }
        match self.pause.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => Poll::Ready(Some(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "connection reset by the test proxy",
            )))),
        }
    }
}
