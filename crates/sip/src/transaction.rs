//! RFC 3261 §17 transaction state machines (with RFC 6026's Accepted state), no I/O.
//!
//! A transaction is fed events (a response, a retransmitted request, an ACK, the passing
//! of time) and answers with what to do. It holds no message bytes: the caller keeps the
//! request or last response beside it and acts on [`ClientAction`] / [`ServerAction`].
//! Time is always a parameter, so tests walk every timer path in microseconds.

use std::time::{Duration, Instant};

/// T1, T2, T4 of RFC 3261 §17.1.1.1 / Table 4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timers {
    pub t1: Duration,
    pub t2: Duration,
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl Timers {
    /// 64·T1: timers B, F, H, J and L.
    pub fn t1x64(&self) -> Duration {
        self.t1 * 64
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Invite,
    NonInvite,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// INVITE client before any response.
    Calling,
    /// Non-INVITE (client or server) before any response.
    Trying,
    Proceeding,
    /// RFC 6026: INVITE server after sending 2xx, absorbing INVITE retransmissions.
    Accepted,
    Completed,
    /// INVITE server after the ACK for its non-2xx final response.
    Confirmed,
    Terminated,
}

/// What the owner of a transaction must do after an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAction {
    /// Nothing to send, nothing to report.
    None,
    /// Pass the response to the transaction user (proxy core / UA).
    PassUp,
    /// Pass the response up and send an ACK for it (INVITE, 300–699, §17.1.1.3).
    PassUpAndAck,
    /// Retransmitted final response: send the ACK again, do not pass it up.
    Ack,
    /// Timer A or E: retransmit the request.
    Retransmit,
    /// Timer B or F: no final response; the TU acts as if a 408 arrived.
    Timeout,
    /// The transaction is over; forget it.
    Terminated,
}

/// A client transaction (§17.1).
#[derive(Clone, Debug)]
pub struct ClientTransaction {
    kind: Kind,
    reliable: bool,
    timers: Timers,
    state: State,
    retransmit_at: Option<Instant>,
    interval: Duration,
    timeout_at: Option<Instant>,
    terminate_at: Option<Instant>,
}

impl ClientTransaction {
    /// Starts a transaction whose request was just sent at `now`.
    pub fn new(kind: Kind, reliable: bool, timers: Timers, now: Instant) -> Self {
        ClientTransaction {
            kind,
            reliable,
            timers,
            state: if kind == Kind::Invite {
                State::Calling
            } else {
                State::Trying
            },
            // Timer A / E: only over unreliable transports.
            retransmit_at: (!reliable).then(|| now + timers.t1),
            interval: timers.t1,
            // Timer B / F
            timeout_at: Some(now + timers.t1x64()),
            terminate_at: None,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn is_terminated(&self) -> bool {
        self.state == State::Terminated
    }

    /// The earliest instant at which [`Self::on_timer`] has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        [self.retransmit_at, self.timeout_at, self.terminate_at]
            .into_iter()
            .flatten()
            .min()
    }

    pub fn on_response(&mut self, status: u16, now: Instant) -> ClientAction {
        let provisional = status < 200;
        match (self.kind, self.state) {
            (_, State::Terminated) => ClientAction::None,
            (Kind::Invite, State::Calling | State::Proceeding) => {
                if provisional {
                    self.state = State::Proceeding;
                    self.retransmit_at = None;
                    self.timeout_at = None;
                    ClientAction::PassUp
                } else if status < 300 {
                    self.terminate();
                    ClientAction::PassUp
                } else {
                    self.complete(now, self.timers_d());
                    ClientAction::PassUpAndAck
                }
            }
            (Kind::Invite, State::Completed) if !provisional && status >= 300 => ClientAction::Ack,
            (Kind::Invite, _) => ClientAction::None,
            (Kind::NonInvite, State::Trying | State::Proceeding) => {
                if provisional {
                    if self.state == State::Trying && !self.reliable {
                        // §17.1.2.2: in Proceeding, retransmit every T2.
                        self.interval = self.timers.t2;
                    }
                    self.state = State::Proceeding;
                    ClientAction::PassUp
                } else {
                    let k = if self.reliable {
                        Duration::ZERO
                    } else {
                        self.timers.t4
                    };
                    self.complete(now, k);
                    ClientAction::PassUp
                }
            }
            (Kind::NonInvite, _) => ClientAction::None,
        }
    }

    fn timers_d(&self) -> Duration {
        // Timer D: at least 32 s over UDP, zero over reliable transports.
        if self.reliable {
            Duration::ZERO
        } else {
            Duration::from_secs(32).max(self.timers.t1x64() / 2)
        }
    }

    fn complete(&mut self, now: Instant, linger: Duration) {
        self.state = State::Completed;
        self.retransmit_at = None;
        self.timeout_at = None;
        self.terminate_at = Some(now + linger);
    }

    fn terminate(&mut self) {
        self.state = State::Terminated;
        self.retransmit_at = None;
        self.timeout_at = None;
        self.terminate_at = None;
    }

    /// A transport error sending the request (§17.1.1.2, §17.1.2.2): like a timeout.
    pub fn on_transport_error(&mut self) -> ClientAction {
        if matches!(self.state, State::Completed | State::Terminated) {
            return ClientAction::None;
        }
        self.terminate();
        ClientAction::Timeout
    }

    pub fn on_timer(&mut self, now: Instant) -> ClientAction {
        if self.terminate_at.is_some_and(|t| now >= t) {
            self.terminate();
            return ClientAction::Terminated;
        }
        if self.timeout_at.is_some_and(|t| now >= t) {
            self.terminate();
            return ClientAction::Timeout;
        }
        if let Some(at) = self.retransmit_at {
            if now >= at {
                self.interval = match self.kind {
                    // Timer A doubles without bound (B ends it).
                    Kind::Invite => self.interval * 2,
                    // Timer E doubles up to T2; in Proceeding it stays at T2.
                    Kind::NonInvite if self.state == State::Proceeding => self.timers.t2,
                    Kind::NonInvite => (self.interval * 2).min(self.timers.t2),
                };
                self.retransmit_at = Some(now + self.interval);
                return ClientAction::Retransmit;
            }
        }
        ClientAction::None
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerAction {
    None,
    /// Send the last response again (request retransmission, or timer G).
    ResendResponse,
    /// The ACK for a non-2xx final response arrived: absorb it (do not pass it up).
    AbsorbAck,
    /// The ACK does not belong to this transaction's non-2xx answer (it is end-to-end).
    PassAckUp,
    /// Timer H: the ACK never came; the TU should know the dialog failed.
    Timeout,
    Terminated,
}

/// A server transaction (§17.2).
#[derive(Clone, Debug)]
pub struct ServerTransaction {
    kind: Kind,
    reliable: bool,
    timers: Timers,
    state: State,
    has_response: bool,
    last_status: u16,
    retransmit_at: Option<Instant>,
    interval: Duration,
    timeout_at: Option<Instant>,
    terminate_at: Option<Instant>,
}

impl ServerTransaction {
    /// A new request arrived and was passed to the TU.
    pub fn new(kind: Kind, reliable: bool, timers: Timers) -> Self {
        ServerTransaction {
            kind,
            reliable,
            timers,
            state: if kind == Kind::Invite {
                State::Proceeding
            } else {
                State::Trying
            },
            has_response: false,
            last_status: 0,
            retransmit_at: None,
            interval: timers.t1,
            timeout_at: None,
            terminate_at: None,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn last_status(&self) -> u16 {
        self.last_status
    }

    pub fn is_terminated(&self) -> bool {
        self.state == State::Terminated
    }

    /// Whether a final response has been sent.
    pub fn is_final(&self) -> bool {
        self.last_status >= 200
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        [self.retransmit_at, self.timeout_at, self.terminate_at]
            .into_iter()
            .flatten()
            .min()
    }

    /// The same request arrived again.
    pub fn on_request_retransmit(&mut self) -> ServerAction {
        match self.state {
            State::Proceeding | State::Completed if self.has_response => {
                ServerAction::ResendResponse
            }
            _ => ServerAction::None,
        }
    }

    /// The TU sends a response with `status`. Returns false (send nothing) when the
    /// state forbids it, e.g. a second final response.
    pub fn on_send_response(&mut self, status: u16, now: Instant) -> bool {
        match self.state {
            State::Trying | State::Proceeding => {}
            // RFC 6026: further 2xx (retransmitted by the TU) pass through in Accepted.
            State::Accepted if (200..300).contains(&status) => return true,
            _ => return false,
        }
        self.has_response = true;
        self.last_status = status;
        if status < 200 {
            self.state = State::Proceeding;
            return true;
        }
        match self.kind {
            Kind::Invite if status < 300 => {
                self.state = State::Accepted;
                self.terminate_at = Some(now + self.timers.t1x64()); // Timer L
            }
            Kind::Invite => {
                self.state = State::Completed;
                if !self.reliable {
                    self.interval = self.timers.t1;
                    self.retransmit_at = Some(now + self.interval); // Timer G
                }
                self.timeout_at = Some(now + self.timers.t1x64()); // Timer H
            }
            Kind::NonInvite => {
                self.state = State::Completed;
                // Timer J
                self.terminate_at = Some(
                    now + if self.reliable {
                        Duration::ZERO
                    } else {
                        self.timers.t1x64()
                    },
                );
            }
        }
        true
    }

    pub fn on_ack(&mut self, now: Instant) -> ServerAction {
        match (self.kind, self.state) {
            (Kind::Invite, State::Completed) => {
                self.state = State::Confirmed;
                self.retransmit_at = None;
                self.timeout_at = None;
                // Timer I
                self.terminate_at = Some(
                    now + if self.reliable {
                        Duration::ZERO
                    } else {
                        self.timers.t4
                    },
                );
                ServerAction::AbsorbAck
            }
            (Kind::Invite, State::Confirmed) => ServerAction::AbsorbAck,
            _ => ServerAction::PassAckUp,
        }
    }

    /// A transport failure sending a response (§17.2.4 lets the TU retry elsewhere; we end).
    pub fn on_transport_error(&mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        self.state = State::Terminated;
        self.retransmit_at = None;
        self.timeout_at = None;
        self.terminate_at = None;
    }

    pub fn on_timer(&mut self, now: Instant) -> ServerAction {
        if self.terminate_at.is_some_and(|t| now >= t) {
            self.terminate();
            return ServerAction::Terminated;
        }
        if self.timeout_at.is_some_and(|t| now >= t) {
            self.terminate();
            return ServerAction::Timeout;
        }
        if let Some(at) = self.retransmit_at {
            if now >= at {
                self.interval = (self.interval * 2).min(self.timers.t2);
                self.retransmit_at = Some(now + self.interval);
                return ServerAction::ResendResponse;
            }
        }
        ServerAction::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Runs timers until `until`, returning (time offset in ms, action) for each event.
    fn drive_client(
        tx: &mut ClientTransaction,
        t0: Instant,
        until: Duration,
    ) -> Vec<(u128, ClientAction)> {
        let mut out = vec![];
        while let Some(at) = tx.next_deadline() {
            if at > t0 + until {
                break;
            }
            let a = tx.on_timer(at);
            out.push(((at - t0).as_millis(), a));
            if tx.is_terminated() {
                break;
            }
        }
        out
    }

    #[test]
    fn invite_client_timer_a_doubles_until_timer_b() {
        let t0 = Instant::now();
        let mut tx = ClientTransaction::new(Kind::Invite, false, Timers::default(), t0);
        let ev = drive_client(&mut tx, t0, Duration::from_secs(60));
        let retrans: Vec<u128> = ev
            .iter()
            .filter(|e| e.1 == ClientAction::Retransmit)
            .map(|e| e.0)
            .collect();
        assert_eq!(retrans, [500, 1500, 3500, 7500, 15500, 31500]);
        assert_eq!(ev.last().unwrap(), &(32000, ClientAction::Timeout));
    }

    #[test]
    fn invite_client_reliable_has_no_retransmissions() {
        let t0 = Instant::now();
        let mut tx = ClientTransaction::new(Kind::Invite, true, Timers::default(), t0);
        let ev = drive_client(&mut tx, t0, Duration::from_secs(60));
        assert_eq!(ev, [(32000, ClientAction::Timeout)]);
    }

    #[test]
    fn invite_client_provisional_stops_a_and_b_then_non2xx_acks_and_timer_d() {
        let t0 = Instant::now();
        let mut tx = ClientTransaction::new(Kind::Invite, false, Timers::default(), t0);
        assert_eq!(tx.on_response(180, t0 + ms(100)), ClientAction::PassUp);
        assert_eq!(tx.state(), State::Proceeding);
        assert_eq!(tx.next_deadline(), None, "no timers in Proceeding");
        assert_eq!(
            tx.on_response(486, t0 + ms(200)),
            ClientAction::PassUpAndAck
        );
        assert_eq!(tx.on_response(486, t0 + ms(300)), ClientAction::Ack);
        assert_eq!(tx.on_response(180, t0 + ms(300)), ClientAction::None);
        assert_eq!(
            tx.next_deadline(),
            Some(t0 + ms(200) + Duration::from_secs(32))
        );
        assert_eq!(tx.on_timer(t0 + ms(32200)), ClientAction::Terminated);
    }

    #[test]
    fn invite_client_2xx_terminates() {
        let t0 = Instant::now();
        let mut tx = ClientTransaction::new(Kind::Invite, false, Timers::default(), t0);
        assert_eq!(tx.on_response(200, t0), ClientAction::PassUp);
        assert!(tx.is_terminated());
    }

    #[test]
    fn invite_client_timer_d_zero_on_tcp() {
        let t0 = Instant::now();
        let mut tx = ClientTransaction::new(Kind::Invite, true, Timers::default(), t0);
        tx.on_response(603, t0);
        assert_eq!(tx.on_timer(t0), ClientAction::Terminated);
    }

    #[test]
    fn non_invite_client_timer_e_caps_at_t2_and_f_times_out() {
        let t0 = Instant::now();
        let mut tx = ClientTransaction::new(Kind::NonInvite, false, Timers::default(), t0);
        let ev = drive_client(&mut tx, t0, Duration::from_secs(60));
        let retrans: Vec<u128> = ev
            .iter()
            .filter(|e| e.1 == ClientAction::Retransmit)
            .map(|e| e.0)
            .collect();
        assert_eq!(&retrans[..6], [500, 1500, 3500, 7500, 11500, 15500]);
        assert_eq!(ev.last().unwrap(), &(32000, ClientAction::Timeout));
    }

    #[test]
    fn non_invite_client_proceeding_retransmits_every_t2_and_timer_k() {
        let t0 = Instant::now();
        let mut tx = ClientTransaction::new(Kind::NonInvite, false, Timers::default(), t0);
        assert_eq!(tx.on_timer(t0 + ms(500)), ClientAction::Retransmit);
        assert_eq!(tx.on_response(100, t0 + ms(600)), ClientAction::PassUp);
        assert_eq!(tx.on_timer(t0 + ms(1500)), ClientAction::Retransmit);
        assert_eq!(tx.next_deadline(), Some(t0 + ms(5500)));
        assert_eq!(tx.on_response(200, t0 + ms(2000)), ClientAction::PassUp);
        assert_eq!(tx.state(), State::Completed);
        assert_eq!(
            tx.on_response(200, t0 + ms(2100)),
            ClientAction::None,
            "retransmissions absorbed"
        );
        assert_eq!(tx.next_deadline(), Some(t0 + ms(7000)), "Timer K = T4");
        assert_eq!(tx.on_timer(t0 + ms(7000)), ClientAction::Terminated);
    }

    #[test]
    fn client_transport_error_is_a_timeout() {
        let t0 = Instant::now();
        let mut tx = ClientTransaction::new(Kind::NonInvite, true, Timers::default(), t0);
        assert_eq!(tx.on_transport_error(), ClientAction::Timeout);
        assert!(tx.is_terminated());
    }

    #[test]
    fn invite_server_non2xx_timer_g_h() {
        let t0 = Instant::now();
        let mut tx = ServerTransaction::new(Kind::Invite, false, Timers::default());
        assert_eq!(
            tx.on_request_retransmit(),
            ServerAction::None,
            "nothing sent yet"
        );
        assert!(tx.on_send_response(100, t0));
        assert_eq!(tx.on_request_retransmit(), ServerAction::ResendResponse);
        assert!(tx.on_send_response(486, t0));
        assert!(!tx.on_send_response(200, t0), "no second final response");
        let mut resends = vec![];
        loop {
            let at = tx.next_deadline().unwrap();
            match tx.on_timer(at) {
                ServerAction::ResendResponse => resends.push((at - t0).as_millis()),
                ServerAction::Timeout => {
                    assert_eq!((at - t0).as_millis(), 32000);
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(&resends[..6], [500, 1500, 3500, 7500, 11500, 15500]);
        assert!(tx.is_terminated());
    }

    #[test]
    fn invite_server_ack_confirms_and_timer_i() {
        let t0 = Instant::now();
        let mut tx = ServerTransaction::new(Kind::Invite, false, Timers::default());
        tx.on_send_response(404, t0);
        assert_eq!(tx.on_request_retransmit(), ServerAction::ResendResponse);
        assert_eq!(tx.on_ack(t0 + ms(10)), ServerAction::AbsorbAck);
        assert_eq!(tx.state(), State::Confirmed);
        assert_eq!(tx.on_ack(t0 + ms(20)), ServerAction::AbsorbAck);
        assert_eq!(tx.on_request_retransmit(), ServerAction::None);
        assert_eq!(tx.next_deadline(), Some(t0 + ms(5010)), "Timer I = T4");
        assert_eq!(tx.on_timer(t0 + ms(5010)), ServerAction::Terminated);
    }

    #[test]
    fn invite_server_2xx_accepted_timer_l() {
        let t0 = Instant::now();
        let mut tx = ServerTransaction::new(Kind::Invite, true, Timers::default());
        assert!(tx.on_send_response(200, t0));
        assert_eq!(tx.state(), State::Accepted);
        assert_eq!(
            tx.on_request_retransmit(),
            ServerAction::None,
            "absorbed, not passed up"
        );
        assert!(
            tx.on_send_response(200, t0),
            "2xx retransmission by the TU passes"
        );
        assert_eq!(
            tx.on_ack(t0),
            ServerAction::PassAckUp,
            "ACK for 2xx is end-to-end"
        );
        assert_eq!(
            tx.on_timer(t0 + Duration::from_secs(32)),
            ServerAction::Terminated
        );
    }

    #[test]
    fn non_invite_server_timer_j() {
        let t0 = Instant::now();
        let mut udp = ServerTransaction::new(Kind::NonInvite, false, Timers::default());
        assert_eq!(
            udp.on_request_retransmit(),
            ServerAction::None,
            "Trying absorbs"
        );
        udp.on_send_response(200, t0);
        assert_eq!(udp.on_request_retransmit(), ServerAction::ResendResponse);
        assert_eq!(udp.next_deadline(), Some(t0 + Duration::from_secs(32)));
        assert_eq!(
            udp.on_timer(t0 + Duration::from_secs(32)),
            ServerAction::Terminated
        );
        let mut tcp = ServerTransaction::new(Kind::NonInvite, true, Timers::default());
        tcp.on_send_response(200, t0);
        assert_eq!(
            tcp.on_timer(t0),
            ServerAction::Terminated,
            "Timer J = 0 over TCP"
        );
    }

    #[test]
    fn invite_server_tcp_no_retransmit_timer_h_only() {
        let t0 = Instant::now();
        let mut tx = ServerTransaction::new(Kind::Invite, true, Timers::default());
        tx.on_send_response(500, t0);
        assert_eq!(tx.next_deadline(), Some(t0 + Duration::from_secs(32)));
        assert_eq!(
            tx.on_timer(t0 + Duration::from_secs(32)),
            ServerAction::Timeout
        );
    }
}
