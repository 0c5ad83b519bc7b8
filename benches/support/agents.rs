//! The agents the engine bench logs out, and tests/xstate.rs with it: 3
//! channels, voice and email Ready, chat Not Ready, all active.

use hisflow::engine::{Channel, Session};
use hisflow::platform::sim::{ChannelState, SwitchState};

const MEDIA: [&str; 3] = ["voice", "email", "chat"];

/// A logged-in agent: voice and email Ready, chat Not Ready, all active.
pub fn session(agent: usize) -> Session {
    let mut s = Session::new(format!("session-{agent}"), format!("agent-{agent}"));
    for (i, m) in MEDIA.iter().enumerate() {
        s.channels.push(Channel {
            id: (*m).into(),
            media: (*m).into(),
            state: if i < 2 { "Ready" } else { "NotReady" }.into(),
            active: true,
            interactions: Vec::new(),
        });
    }
    s.logout_reasons = vec!["Lunch".into(), "End of shift".into()];
    s.group = true;
    s
}

/// One switch with `agents` logged-in agents, as HIS has one per platform.
pub fn switch(agents: usize) -> SwitchState {
    let mut state = SwitchState::default();
    for a in 0..agents {
        let agent = state.agents.entry(format!("agent-{a}")).or_default();
        agent.logged_in = true;
        for (i, m) in MEDIA.iter().enumerate() {
            agent.channels.insert(
                m.to_string(),
                ChannelState {
                    state: if i < 2 { "Ready" } else { "NotReady" }.into(),
                    active: true,
                    interactions: Vec::new(),
                },
            );
        }
    }
    state
        .reason_codes
        .insert("logout".into(), vec!["Lunch".into(), "End of shift".into()]);
    state
}
