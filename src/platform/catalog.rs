//! The operation catalog: every primitive a workflow can call, with its
//! arguments and outcomes. The validator checks workflows against it, so a
//! workflow that calls an operation its platform's adapter lacks is a
//! diagnostic, never a run-time surprise.

/// Who carries an operation out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// The switch, through the platform's adapter. These can fail and time out.
    Switch,
    /// HIS itself (sessions, channel groups, channels). Available on every platform.
    His,
}

/// One argument of an operation. Every argument is a CEL expression in the workflow.
#[derive(Debug, Clone, Copy)]
pub struct ArgSpec {
    pub name: &'static str,
    pub required: bool,
    pub summary: &'static str,
}

/// What an operation does, resolved with its spec at validation: the
/// engine dispatches on it rather than on the operation's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Switch(SwitchOp),
    His(HisOp),
}

/// An operation the platform's adapter carries out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwitchOp {
    Login,
    Logout,
    SetReady,
    SetNotReady,
    ReasonCodes,
    State,
    Activate,
    Deactivate,
}

/// An operation HIS carries out on the session it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HisOp {
    GroupCreate,
    ChannelCreate,
    ChannelDispose,
    GroupDispose,
    SessionDispose,
    SessionSet,
}

/// One operation of the catalog.
#[derive(Debug, Clone, Copy)]
pub struct OperationSpec {
    pub name: &'static str,
    pub kind: OpKind,
    pub summary: &'static str,
    pub args: &'static [ArgSpec],
    /// The outcomes a state calling this operation must handle.
    pub outcomes: &'static [&'static str],
    /// What `save:` stores, when the operation returns something.
    pub result: Option<&'static str>,
}

impl OperationSpec {
    pub const fn provider(&self) -> Provider {
        match self.kind {
            OpKind::Switch(_) => Provider::Switch,
            OpKind::His(_) => Provider::His,
        }
    }

    pub fn arg(&self, name: &str) -> Option<&ArgSpec> {
        self.args.iter().find(|a| a.name == name)
    }
}

/// Outcomes of every switch operation: it succeeded, the switch refused it
/// (`error` holds the switch's code and message), or it did not answer in time.
pub const SWITCH_OUTCOMES: &[&str] = &["ok", "error", "timeout"];

const fn arg(name: &'static str, required: bool, summary: &'static str) -> ArgSpec {
    ArgSpec {
        name,
        required,
        summary,
    }
}

const CHANNEL: ArgSpec = arg("channel", true, "id of the channel (its media name)");
const AGENT_WIDE: ArgSpec = arg(
    "channel",
    false,
    "id of the channel (its media name); without it, every channel of the agent",
);

/// The full catalog, in documentation order.
pub const OPERATIONS: &[OperationSpec] = &[
    OperationSpec {
        name: "agent.login",
        kind: OpKind::Switch(SwitchOp::Login),
        summary: "Log the agent in to the switch on one channel.",
        args: &[CHANNEL],
        outcomes: SWITCH_OUTCOMES,
        result: None,
    },
    OperationSpec {
        name: "agent.logout",
        kind: OpKind::Switch(SwitchOp::Logout),
        summary: "Log the agent out of the switch, with a logout reason where the switch takes one.",
        args: &[arg("reason", false, "the logout reason (code or label)")],
        outcomes: SWITCH_OUTCOMES,
        result: None,
    },
    OperationSpec {
        name: "agent.set_ready",
        kind: OpKind::Switch(SwitchOp::SetReady),
        summary: "Make the agent Ready on one channel, or on every channel without one (a switch whose state is the agent's, such as TaskRouter's Activity).",
        args: &[AGENT_WIDE],
        outcomes: SWITCH_OUTCOMES,
        result: None,
    },
    OperationSpec {
        name: "agent.set_not_ready",
        kind: OpKind::Switch(SwitchOp::SetNotReady),
        summary: "Make the agent Not Ready on one channel, or on every channel without one, with a reason where given.",
        args: &[
            AGENT_WIDE,
            arg("reason", false, "the Not Ready reason (code or label)"),
            arg(
                "reject_pending",
                false,
                "true: reject the work the switch is offering the agent (TaskRouter's RejectPendingReservations) instead of leaving it pending",
            ),
        ],
        outcomes: SWITCH_OUTCOMES,
        result: None,
    },
    OperationSpec {
        name: "agent.reason_codes",
        kind: OpKind::Switch(SwitchOp::ReasonCodes),
        summary: "List the reason codes the switch has configured for a category.",
        args: &[arg("category", true, "`logout` or `not_ready`")],
        outcomes: SWITCH_OUTCOMES,
        result: Some("list of reason labels"),
    },
    OperationSpec {
        name: "agent.state",
        kind: OpKind::Switch(SwitchOp::State),
        summary: "Read the agent's state on one channel from the switch.",
        args: &[CHANNEL],
        outcomes: SWITCH_OUTCOMES,
        result: Some(
            "`{state, active, interactions}`: the agent state, whether the switch routes work on the channel, the ids of its interactions",
        ),
    },
    OperationSpec {
        name: "channel.activate",
        kind: OpKind::Switch(SwitchOp::Activate),
        summary: "Activate a channel: the switch may route work on it again.",
        args: &[CHANNEL],
        outcomes: SWITCH_OUTCOMES,
        result: None,
    },
    OperationSpec {
        name: "channel.deactivate",
        kind: OpKind::Switch(SwitchOp::Deactivate),
        summary: "Deactivate a channel: the switch routes no new work on it.",
        args: &[CHANNEL],
        outcomes: SWITCH_OUTCOMES,
        result: None,
    },
    OperationSpec {
        name: "his.channel_group.create",
        kind: OpKind::His(HisOp::GroupCreate),
        summary: "Create the session's channel group.",
        args: &[],
        outcomes: &["ok"],
        result: None,
    },
    OperationSpec {
        name: "his.channel.create",
        kind: OpKind::His(HisOp::ChannelCreate),
        summary: "Create a channel of the session for one media; its id is the media name.",
        args: &[arg("media", true, "`voice`, `email` or `chat`")],
        outcomes: &["ok", "error"],
        result: None,
    },
    OperationSpec {
        name: "his.channel.dispose",
        kind: OpKind::His(HisOp::ChannelDispose),
        summary: "Dispose of a channel and its workflow instance.",
        args: &[CHANNEL],
        outcomes: &["ok"],
        result: None,
    },
    OperationSpec {
        name: "his.channel_group.dispose",
        kind: OpKind::His(HisOp::GroupDispose),
        summary: "Dispose of the channel group and its workflow instance.",
        args: &[],
        outcomes: &["ok"],
        result: None,
    },
    OperationSpec {
        name: "his.session.dispose",
        kind: OpKind::His(HisOp::SessionDispose),
        summary: "Dispose of the session and its workflow instance.",
        args: &[],
        outcomes: &["ok"],
        result: None,
    },
    OperationSpec {
        name: "his.session.set",
        kind: OpKind::His(HisOp::SessionSet),
        summary: "Store values in the session (e.g. reasons HIS is configured with).",
        args: &[
            arg(
                "logout_reasons",
                false,
                "the logout reasons offered to the agent",
            ),
            arg(
                "not_ready_reasons",
                false,
                "the Not Ready reasons offered to the agent",
            ),
        ],
        outcomes: &["ok"],
        result: None,
    },
];

/// Looks an operation up by name.
pub fn operation(name: &str) -> Option<&'static OperationSpec> {
    OPERATIONS.iter().find(|o| o.name == name)
}

/// The switch's operations (not HIS's own), in catalog order.
pub fn switch_operations() -> impl Iterator<Item = &'static OperationSpec> + Clone {
    OPERATIONS
        .iter()
        .filter(|o| o.provider() == Provider::Switch)
}

/// A switch operation by name.
pub fn switch_operation(name: &str) -> Option<&'static OperationSpec> {
    switch_operations().find(|o| o.name == name)
}

/// An adapter's check of `adapter.switch:`: the keys down to a wrong entry
/// and what is wrong with it.
pub type SwitchCheck = fn(&serde_json::Value) -> Result<(), (Vec<String>, String)>;

/// An adapter kind: the switch operations it implements and the switch
/// events it delivers.
#[derive(Debug, Clone, Copy)]
pub struct AdapterSpec {
    pub kind: &'static str,
    pub summary: &'static str,
    pub operations: &'static [&'static str],
    /// Names of the [switch events](super::events::EVENTS) it delivers; a
    /// platform must handle or ignore each.
    pub events: &'static [&'static str],
    /// Checks a platform's `adapter.switch:` (how a simulated switch
    /// behaves); `None` when the adapter takes none. An error names the keys
    /// down to the wrong entry, when it is one.
    pub switch: Option<SwitchCheck>,
}

/// The adapter kinds this build of hisflow has. A platform names one in its
/// manifest; its workflows may call that adapter's operations and HIS's own.
pub const ADAPTERS: &[AdapterSpec] = &[SIM, super::twilio::SPEC];

/// Every switch operation of the catalog, for an adapter that has them all.
pub const ALL_SWITCH_OPERATIONS: &[&str] = &[
    "agent.login",
    "agent.logout",
    "agent.set_ready",
    "agent.set_not_ready",
    "agent.reason_codes",
    "agent.state",
    "channel.activate",
    "channel.deactivate",
];

const SIM: AdapterSpec = AdapterSpec {
    kind: "sim",
    summary: "The simulated switch: in memory, deterministic, with fault injection.",
    operations: ALL_SWITCH_OPERATIONS,
    events: &[
        "agent.event.loggedOut",
        "agent.event.logoutPending",
        "agent.event.stateChanged",
        "agent.event.channelActivated",
        "agent.event.channelDeactivated",
        "interaction.event.started",
        "interaction.event.ended",
        "link.event.down",
        "link.event.up",
    ],
    switch: Some(sim_switch),
};

/// Checks a description of the simulated switch (`adapter.switch:`). A
/// platform on a real switch may have one too: the simulated switch stands
/// in for the real one in its scenarios.
pub fn sim_switch(v: &serde_json::Value) -> Result<(), (Vec<String>, String)> {
    let state: super::sim::SwitchState =
        serde_path_to_error::deserialize(v.clone()).map_err(|e| {
            let mut keys: Vec<String> = e
                .path()
                .iter()
                .filter_map(|s| match s {
                    serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                    _ => None,
                })
                .collect();
            // An unknown key is named by the message, not the path.
            let message = e.inner().to_string();
            if let Some(k) = message
                .strip_prefix("unknown field `")
                .and_then(|r| r.split('`').next())
            {
                keys.push(k.to_string());
            }
            (keys, message)
        })?;
    state.check()
}

pub fn adapter(kind: &str) -> Option<&'static AdapterSpec> {
    ADAPTERS.iter().find(|a| a.kind == kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adapters_only_name_switch_operations_of_the_catalog() {
        for a in ADAPTERS {
            for op in a.operations {
                let spec = operation(op).unwrap_or_else(|| panic!("{} lists unknown {op}", a.kind));
                assert_eq!(spec.provider(), Provider::Switch, "{op}");
            }
        }
    }

    #[test]
    fn each_operation_does_its_own_thing_and_his_names_its_own() {
        for (i, a) in OPERATIONS.iter().enumerate() {
            assert_eq!(
                a.name.starts_with("his."),
                a.provider() == Provider::His,
                "{}",
                a.name
            );
            for b in &OPERATIONS[i + 1..] {
                assert_ne!(a.kind, b.kind, "{} and {} do the same", a.name, b.name);
            }
        }
    }

    #[test]
    fn adapters_only_name_events_of_the_catalog() {
        for a in ADAPTERS {
            for e in a.events {
                assert!(
                    super::super::events::event(e).is_some(),
                    "{} lists unknown {e}",
                    a.kind
                );
            }
        }
    }

    #[test]
    fn operation_names_are_unique() {
        for (i, a) in OPERATIONS.iter().enumerate() {
            assert!(
                OPERATIONS[i + 1..].iter().all(|b| b.name != a.name),
                "{}",
                a.name
            );
        }
    }
}
