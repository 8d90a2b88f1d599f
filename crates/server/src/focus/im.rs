//! Conference IM: a MESSAGE from a participant reaches every other participant (not the
//! lobby), the sender named.

use super::*;

impl Core {
    /// Conference IM: a MESSAGE to the conference URI from a participant.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn conference_im(
        &self,
        shard: &mut Shard,
        msg: &Message,
        conf: &ConfAddr,
        caller: &Caller,
        src: &Source,
        out: &mut Vec<Outgoing>,
    ) -> Verdict {
        let pid = {
            let st = self.focus.state.lock();
            let Some(c) = st.confs.get(&conf.key) else {
                return Verdict::reply(480, "The meeting has not started");
            };
            match participant_of(c, caller, src) {
                Some(p) => p,
                None => return Verdict::reply(403, "Only participants may send to the meeting"),
            }
        };
        self.conference_im_from(shard, msg, &conf.key, pid, out)
    }

    pub(super) fn conference_im_from(
        &self,
        shard: &mut Shard,
        msg: &Message,
        conf_key: &str,
        pid: u32,
        out: &mut Vec<Outgoing>,
    ) -> Verdict {
        if msg.body.len() > MAX_IM_BYTES {
            return Verdict::reply(413, "Message too large for conference IM");
        }
        let ctype = msg
            .header(&HeaderName::ContentType)
            .map(|t| t.to_string())
            .unwrap_or_else(|| "text/plain".to_string());
        let mut sends = Sends::default();
        {
            let mut st = self.focus.state.lock();
            let Some(c) = st.confs.get_mut(conf_key) else {
                return Verdict::reply(481, "Call/Transaction Does Not Exist");
            };
            let Some(sender) = c.participant(pid).filter(|p| !p.lobby) else {
                return Verdict::reply(403, "Participants in the lobby cannot send to the meeting");
            };
            let (name, user) = (sender.display.replace('"', ""), sender.user.clone());
            for p in c
                .participants
                .iter_mut()
                .filter(|p| p.id != pid && !p.lobby)
            {
                if let Some(mut req) = p.dialog.request(self, Method::Message) {
                    // the sender, named: display name on the focus's From, and its URI
                    rename_from(&mut req, &name);
                    req.headers.push(
                        HeaderName::Other("P-Asserted-Identity".into()),
                        format!("\"{name}\" <{user}>"),
                    );
                    req.set_body(&ctype, msg.body.clone());
                    sends.requests.push((req, p.dialog.dest));
                }
            }
        }
        self.flush_locked(shard, sends, out);
        Verdict::Reply(200, None)
    }
}
