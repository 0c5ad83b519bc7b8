// The reference Agent Logout (workflows/reference/logout.yaml and the
// workflows it calls) written as XState 5 machines, timed the way
// benches/engine.rs times hisflow's interpreter: a 3-channel logout (voice and
// email Ready, chat Not Ready, all active, reason given) against an in-memory
// switch, so that the two figures compare like for like.
//
//   (cd benches/xstate && npm ci)
//   node benches/xstate/logout.mjs                   both variants, 2,000 agents × 15 rounds
//   node benches/xstate/logout.mjs --variant lean    one of them (actors or lean)
//   node benches/xstate/logout.mjs --quick           200 agents × 3 rounds
//   node benches/xstate/logout.mjs --json            the figures as one JSON line
//   node benches/xstate/logout.mjs --check           the events, the other flows, and
//                                                    the variants against each other
//
// Two ways to write it, both XState as its users write it, so that hisflow is
// compared with the faster of them (`us_per_logout` in the JSON line), not
// with a strawman:
//
// - actors: each workflow is a machine and each called workflow an invoked
//   child machine; the channel machine (channel.yaml) is an actor per channel,
//   kept by the session as hisflow keeps each channel's state. Sixteen actors
//   per logout.
// - lean: one machine, defined once, and one actor per logout. The logout's
//   states are its states; go_not_ready and deactivate_channel are compound
//   states nested where the logout calls them, dispose_session and
//   dispose_channel an action list; the channels are plain records in the
//   context, which the channel machine's transitions, written as a pure
//   function, update.
//
// In both, the switch is a plain object whose calls are synchronous, as
// hisflow's simulated switch answers at once.

import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import {
  and,
  assign,
  createActor,
  emit,
  enqueueActions,
  forwardTo,
  fromCallback,
  not,
  or,
  setup,
  stateIn,
} from 'xstate';

// ---------------------------------------------------------------------------
// The platform: workflows/reference/platform.yaml, every setting at its default.

const REFERENCE = Object.freeze({
  media: ['voice', 'email', 'chat'],
  logout_reason: 'required',
  logout_reason_free_text: false,
  deactivatable_media: ['voice', 'email', 'chat'],
  logout_not_ready_reason: 'Logout',
  confirmation: 'reply',
  not_ready_reason: 'optional',
  switch_toggles_channels: true,
  not_ready_before_logout: true,
  status_scope: 'channel',
  reject_pending_at_logout: false,
  busy_logout: 'refuse',
});

// ---------------------------------------------------------------------------
// The switch, as src/platform/sim does it: agents and their channels in a map,
// each operation checked and applied at once (or, confirming by events,
// accepted now and carried out when the run waits for its event).

const LOGGED_OFF = 'LoggedOff';

class SwitchError {
  constructor(code, message) {
    this.code = code;
    this.message = message;
  }
}

class SimSwitch {
  constructor({ confirmByEvent = false } = {}) {
    this.agents = new Map();
    this.reasonCodes = new Map();
    this.connected = true;
    this.freeLogoutReasons = false;
    this.strictNotReady = false;
    this.pendingLogout = false;
    this.confirmByEvent = confirmByEvent;
    this.faults = [];
    this.inflight = [];
    this.queued = [];
  }

  /** Makes the `call`-th call of `op` fail with `error`. */
  fault(op, call, error) {
    this.faults.push({ op, call, seen: 0, error });
  }

  /** `{ ok: true }`, or `{ ok: false, error }` with the switch's code and message. */
  call(agent, op) {
    if (this.confirmByEvent) this.catchUp(agent);
    const fault = this.faultFor(op);
    if (fault) return { ok: false, error: fault };
    if (this.confirmByEvent && this.connected) {
      // A reason the switch does not take is refused in its answer, not
      // accepted and dropped.
      const refused = this.reasonRefused(op);
      if (refused) return { ok: false, error: refused };
      this.inflight.push({ agent, op });
      return { ok: true };
    }
    try {
      this.apply(agent, op, this.queued);
      return { ok: true };
    } catch (e) {
      if (e instanceof SwitchError) return { ok: false, error: e };
      throw e;
    }
  }

  /** The switch's next event for `agent`, carrying out what it accepted if need be. */
  nextEvent(agent) {
    if (this.queued.length === 0) {
      const i = this.inflight.findIndex((f) => f.agent === agent);
      if (i >= 0) this.confirm(this.inflight.splice(i, 1)[0]);
    }
    const i = this.queued.findIndex((e) => e.agent === agent);
    return i < 0 ? undefined : this.queued.splice(i, 1)[0].event;
  }

  faultFor(op) {
    let hit;
    for (const f of this.faults) {
      if (f.op !== op.type) continue;
      f.seen += 1;
      if (!hit && f.seen === f.call) hit = new SwitchError(f.error.code, f.error.message);
    }
    return hit;
  }

  // A switch handles one agent's requests in order: what it accepted is done
  // before the agent's next request.
  catchUp(agent) {
    const mine = this.inflight.filter((f) => f.agent === agent);
    this.inflight = this.inflight.filter((f) => f.agent !== agent);
    for (const f of mine) this.confirm(f);
  }

  confirm({ agent, op }) {
    const before = this.queued.length;
    try {
      this.apply(agent, op, this.queued);
    } catch (e) {
      if (e instanceof SwitchError) return; // failed late: no event comes
      throw e;
    }
    // A logout that became pending said so itself.
    if (this.queued.length > before) return;
    for (const event of this.confirmation(agent, op)) this.queued.push({ agent, event });
  }

  confirmation(agent, op) {
    const a = this.agents.get(agent);
    const changed = (target, extra) =>
      [...(a?.channels ?? [])]
        .filter(([id, c]) => (op.channel == null || op.channel === id) && c.state === target)
        .map(([id]) => ({ type: 'agent.event.stateChanged', channel: id, state: target, ...extra }));
    switch (op.type) {
      case 'agent.logout':
        return [{ type: 'agent.event.loggedOut', reason: op.reason ?? null, cause: 'requested' }];
      case 'agent.set_ready':
        return changed('Ready', { reason: null });
      case 'agent.set_not_ready':
        return changed('NotReady', { reason: op.reason ?? null });
      case 'channel.activate':
        return [{ type: 'agent.event.channelActivated', channel: op.channel }];
      case 'channel.deactivate':
        return [{ type: 'agent.event.channelDeactivated', channel: op.channel }];
      default:
        return [];
    }
  }

  loggedIn(agent) {
    const a = this.agents.get(agent);
    if (!a || !a.loggedIn) {
      throw new SwitchError('AgentNotLoggedIn', `agent ${agent} is not logged in`);
    }
    return a;
  }

  channel(agent, id) {
    const c = this.loggedIn(agent).channels.get(id);
    if (!c) throw new SwitchError('AgentNotLoggedIn', `agent ${agent} is not logged in on ${id}`);
    return c;
  }

  // The channels an operation for one channel, or for all the agent's
  // (those logged in), acts on.
  targets(agent, channel) {
    const a = this.loggedIn(agent);
    if (channel != null) return [channel];
    return [...a.channels].filter(([, c]) => c.state !== LOGGED_OFF).map(([id]) => id);
  }

  reasonRefused(op) {
    let category, enforced, what;
    if (op.type === 'agent.logout') {
      [category, enforced, what] = ['logout', !this.freeLogoutReasons, 'a logout reason'];
    } else if (op.type === 'agent.set_not_ready') {
      [category, enforced, what] = ['not_ready', this.strictNotReady, 'a Not Ready reason'];
    } else {
      return undefined;
    }
    const codes = this.reasonCodes.get(category);
    const r = op.reason;
    if (!codes || r == null) return undefined;
    return enforced && codes.length > 0 && !codes.includes(r)
      ? new SwitchError('ReasonCodeOutOfRange', `${r} is not ${what}`)
      : undefined;
  }

  apply(agent, op, queued) {
    if (!this.connected) throw new SwitchError('SwitchUnavailable', 'the switch is not connected');
    switch (op.type) {
      case 'agent.logout': {
        const refused = this.reasonRefused(op);
        const a = this.loggedIn(agent);
        const busy = [...a.channels].find(([, c]) => c.interactions.length > 0);
        if (busy && !this.pendingLogout) {
          throw new SwitchError('InvalidState', `an interaction is in progress on ${busy[0]}`);
        }
        if (refused) throw refused;
        a.logoutReason = op.reason ?? null;
        if (busy) {
          a.logoutPending = true;
          queued.push({ agent, event: { type: 'agent.event.logoutPending', reason: op.reason ?? null } });
          return;
        }
        a.loggedIn = false;
        for (const c of a.channels.values()) c.state = LOGGED_OFF;
        return;
      }
      case 'agent.set_ready':
        for (const id of this.targets(agent, op.channel)) {
          const c = this.channel(agent, id);
          if (op.channel == null && (c.state === 'Reserved' || c.state === 'Talking')) continue;
          if (!c.active) {
            if (op.channel == null) continue;
            throw new SwitchError('InvalidState', `channel ${id} is deactivated`);
          }
          c.state = 'Ready';
        }
        return;
      case 'agent.set_not_ready': {
        const refused = this.reasonRefused(op);
        if (refused) throw refused;
        for (const id of this.targets(agent, op.channel)) {
          const c = this.channel(agent, id);
          const rejected = c.state === 'Reserved' && op.reject_pending === true;
          if (op.channel == null && (c.state === 'Reserved' || c.state === 'Talking') && !rejected) {
            continue;
          }
          c.state = 'NotReady';
        }
        const a = this.agents.get(agent);
        if (a) a.notReadyReason = op.reason ?? null;
        return;
      }
      case 'channel.activate':
        this.channel(agent, op.channel).active = true;
        return;
      case 'channel.deactivate':
        this.channel(agent, op.channel).active = false;
        return;
      default:
        throw new SwitchError('NotSupported', `the switch has no operation ${op.type}`);
    }
  }
}


// ---------------------------------------------------------------------------
// What both variants share: the workflows' answers, word for word, and the
// decisions that read only the platform and the request, so that the two
// differ in how XState runs them and in nothing else.

const has = (record, field) => record[field] != null;

const okResponse = (result = {}, close) =>
  close ? { ok: true, result, close: true } : { ok: true, result };
const errorResponse = (code, message) => ({ ok: false, error: { code, message } });
const needInfo = (need) => ({ ok: false, error: { code: 'NeedInfo', need } });

/** The `error` a failed switch call leaves, as hisflow's `operation` sets it. */
const switchError = ({ code, message }, op) => ({
  code,
  message,
  operation: op.type,
  channel: op.channel ?? null,
});

// The confirmation by event waits this long (the workflows' `timeout: 3s`).
const CONFIRM_TIMEOUT = 3000;

const deactivatable = (platform, media) => platform.deactivatable_media.includes(media);

/** logout.yaml's `vars.reason`: the agent's, unless the switch takes none. */
const logoutReason = (platform, request) =>
  platform.logout_reason !== 'none' && has(request, 'reason') && request.reason !== ''
    ? request.reason
    : null;

/** logout.yaml's responses. */
const LOGOUT = {
  alreadyPending: () =>
    errorResponse('InvalidState', 'Your logout is already pending; it completes when your interaction ends.'),
  pending: () => okResponse({ pending: true }),
  ongoingInteraction: () =>
    errorResponse(
      'OngoingInteraction',
      'You cannot log out while an interaction is in progress. Finish it, then log out.',
    ),
  needReason: ({ platform, session }) =>
    needInfo({
      field: 'reason',
      message: 'Select a logout reason.',
      choices: session.logoutReasons,
      free_text: platform.logout_reason_free_text,
      optional: platform.logout_reason === 'optional',
    }),
  invalidReason: ({ request }) =>
    errorResponse(
      'ReasonCodeOutOfRange',
      `'${request.reason}' is not a logout reason of this switch. Choose one of the listed reasons.`,
    ),
  unavailableNotConfirmed: ({ platform }) =>
    errorResponse(
      'NotReadyFailed',
      `Logout failed: the switch did not confirm ${platform.logout_not_ready_reason} within 3 seconds. You are still logged in.`,
    ),
  unavailableFailure: ({ platform, error }) =>
    errorResponse(
      'NotReadyFailed',
      `Logout failed. The switch did not make you ${platform.logout_not_ready_reason}: ${error.message}. You are still logged in.`,
    ),
  notReadyFailure: ({ error }) =>
    errorResponse('NotReadyFailed', `Logout failed. ${error.message} You are still logged in.`),
  deactivationFailure: ({ error }) =>
    errorResponse('DeactivationFailed', `Logout failed. ${error.message} You are still logged in.`),
  notConfirmed: () =>
    errorResponse(
      'LogoutFailed',
      'The switch did not confirm your logout within 3 seconds. You may still be logged in; if the switch logs you out, this MediaBar returns to the login screen.',
    ),
  logoutRefused: ({ error }) =>
    errorResponse(
      'LogoutFailed',
      `Logout failed. The switch did not log you out: ${error.message}. You are still logged in.`,
    ),
  loggedOut: () => okResponse({}, true),
};

/** go_not_ready.yaml's responses; `request` is the call's. */
const GO_NOT_READY = {
  needReason: ({ session }) =>
    needInfo({
      field: 'reason',
      message: 'Select a Not Ready reason.',
      choices: session.notReadyReasons,
      free_text: false,
    }),
  unknownChannel: ({ request }) =>
    errorResponse('UnknownChannel', `There is no channel ${request.channel} in this session.`),
  notConfirmed: ({ request }) =>
    errorResponse(
      'NotReadyFailed',
      `The switch did not confirm Not Ready on ${request.channel} within 3 seconds.`,
    ),
  refused: ({ request, error }) =>
    errorResponse(
      'NotReadyFailed',
      `The switch did not make you Not Ready on ${request.channel}: ${error.message}.`,
    ),
};

/** deactivate_channel.yaml's responses; `request` is the call's. */
const DEACTIVATE_CHANNEL = {
  notSupported: ({ channels, request }) =>
    errorResponse(
      'NotSupported',
      `This switch cannot deactivate your ${channels.find((c) => c.id === request.channel).media} channel.`,
    ),
  unknownChannel: ({ request }) =>
    errorResponse('UnknownChannel', `There is no channel ${request.channel} in this session.`),
  notConfirmed: ({ request }) =>
    errorResponse(
      'DeactivationFailed',
      `The switch did not confirm the deactivation of channel ${request.channel} within 3 seconds.`,
    ),
  refused: ({ request, error }) =>
    errorResponse(
      'DeactivationFailed',
      `The switch did not deactivate channel ${request.channel}: ${error.message}.`,
    ),
};

/** logout.yaml's guards that read no channel: both machines' contexts have these fields. */
const logoutGuards = {
  alreadyPending: ({ context: { platform, session } }) =>
    platform.busy_logout === 'pending' && session.state === 'LogoutPending',
  needReason: ({ context: { platform, session, request } }) =>
    (platform.logout_reason === 'required' ||
      (platform.logout_reason === 'if_configured' && session.logoutReasons.length > 0) ||
      (platform.logout_reason === 'optional' &&
        (session.logoutReasons.length > 0 || platform.logout_reason_free_text))) &&
    (!has(request, 'reason') || (request.reason === '' && platform.logout_reason !== 'optional')),
  invalidReason: ({ context: { platform, session, request } }) =>
    platform.logout_reason !== 'none' &&
    has(request, 'reason') &&
    request.reason !== '' &&
    !platform.logout_reason_free_text &&
    session.logoutReasons.length > 0 &&
    !session.logoutReasons.includes(request.reason),
  noNotReadyFirst: ({ context }) => !context.platform.not_ready_before_logout,
  agentScope: ({ context }) => context.platform.status_scope === 'agent',
  byEvent: ({ context }) => context.platform.confirmation === 'event',
  notLoggedIn: ({ context }) => context.error?.code === 'AgentNotLoggedIn',
};

/** A `respond` state of the machine that runs the request: its output. */
const respond = (response) => ({ type: 'final', output: response });

const MEDIA = ['voice', 'email', 'chat'];

/** A logged-in agent's session: voice and email Ready, chat Not Ready, all active. */
function sessionOf(agent, { interactions = {}, ready = 2 } = {}, openChannel) {
  const s = {
    id: `session-${agent}`,
    agent: `agent-${agent}`,
    // No session machine runs: benches/engine.rs's sessions have no state.
    state: null,
    channels: [],
    logoutReasons: ['Lunch', 'End of shift'],
    notReadyReasons: [],
    group: true,
    disposed: false,
    // The events of the request being handled.
    outbox: null,
  };
  MEDIA.forEach((m, i) => {
    s.channels.push(
      openChannel(s, {
        id: m,
        media: m,
        state: i < ready ? 'Ready' : 'NotReady',
        active: true,
        interactions: (interactions[m] ?? []).map((id) => ({ id, media: m })),
      }),
    );
  });
  return s;
}

/** One switch with `agents` logged-in agents, as HIS has one per platform. */
function simSwitch(agents, { interactions = {}, ready = 2, confirmByEvent = false } = {}) {
  const sw = new SimSwitch({ confirmByEvent });
  for (let a = 0; a < agents; a++) {
    const channels = new Map();
    MEDIA.forEach((m, i) => {
      channels.set(m, {
        state: i < ready ? 'Ready' : 'NotReady',
        active: true,
        interactions: [...(interactions[m] ?? [])],
      });
    });
    sw.agents.set(`agent-${a}`, {
      loggedIn: true,
      logoutPending: false,
      logoutReason: null,
      notReadyReason: null,
      channels,
    });
  }
  sw.reasonCodes.set('logout', ['Lunch', 'End of shift']);
  return sw;
}
// ===========================================================================
// The actors variant: a machine per workflow, an invoked child per call, an
// actor per channel.

// ---------------------------------------------------------------------------
// The channel machine (channel.yaml). What the switch accepted at HIS's
// request reaches it as the operation itself; what the switch did on its own,
// as the switch's event. It tells the MediaBar by emitting, and the session
// passes that on with the request's other events.

const CHANNEL_STATES = ['LoggedOff', 'NotReady', 'Ready', 'Reserved', 'Talking', 'WorkingAfterCall'];

const channelMachine = setup({
  guards: {
    byReply: ({ context }) => context.platform.confirmation === 'reply',
    channelScope: ({ context }) => context.platform.status_scope === 'channel',
    agentScope: ({ context }) => context.platform.status_scope === 'agent',
    active: ({ context }) => context.active,
    idle: ({ context }) => context.interactions.length === 0,
    canDeactivate: ({ context }) => context.platform.deactivatable_media.length > 0,
    switchToggles: ({ context }) => context.platform.switch_toggles_channels,
    rejectsPending: ({ event }) => event.reject_pending === true,
  },
}).createMachine({
  id: 'channel',
  context: ({ input }) => ({
    platform: input.platform,
    id: input.id,
    media: input.media,
    active: true,
    interactions: [],
  }),
  initial: 'LoggedOff',
  on: {
    'agent.set_ready': [
      { guard: and(['byReply', 'channelScope']), target: '.Ready' },
      // Agent-wide, a channel offered or handling work keeps it.
      {
        guard: and([
          'byReply',
          'agentScope',
          'active',
          not(or([stateIn('Ready'), stateIn('Reserved'), stateIn('Talking')])),
        ]),
        target: '.Ready',
        actions: emit(({ context }) => ({
          type: 'channel.event.stateChanged',
          data: { channel: context.id, state: 'Ready' },
        })),
      },
    ],
    'agent.set_not_ready': [
      { guard: and(['byReply', 'channelScope']), target: '.NotReady' },
      // Agent-wide, work on offer stays pending unless the change rejects
      // it, and work accepted stays.
      {
        guard: and([
          'byReply',
          'agentScope',
          or([
            not(or([stateIn('Reserved'), stateIn('Talking')])),
            and([stateIn('Reserved'), 'rejectsPending']),
          ]),
        ]),
        target: '.NotReady',
        actions: emit(({ context, event }) => ({
          type: 'channel.event.stateChanged',
          data: { channel: context.id, state: 'NotReady', reason: event.reason ?? null },
        })),
      },
    ],
    // A logout the switch defers leaves a channel with an interaction as it
    // is, until the switch logs the agent out.
    'agent.logout': { guard: and(['byReply', 'idle']), target: '.LoggedOff' },
    'channel.activate': {
      guard: and(['byReply', 'canDeactivate']),
      actions: assign({ active: true }),
    },
    'channel.deactivate': {
      guard: and(['byReply', 'canDeactivate']),
      actions: assign({ active: false }),
    },
    // XState has no target read from the event: one transition per state.
    'agent.event.stateChanged': CHANNEL_STATES.map((s) => ({
      guard: and([({ event }) => event.state === s, not(stateIn(s))]),
      target: `.${s}`,
      actions: emit(({ context, event }) => ({
        type: 'channel.event.stateChanged',
        data: { channel: context.id, state: s, reason: event.reason ?? null },
      })),
    })),
    'agent.event.channelActivated': {
      guard: and(['switchToggles', not('active')]),
      actions: [
        assign({ active: true }),
        emit(({ context }) => ({ type: 'channel.event.activated', data: { channel: context.id } })),
      ],
    },
    'agent.event.channelDeactivated': {
      guard: and(['switchToggles', 'active']),
      actions: [
        assign({ active: false }),
        emit(({ context }) => ({ type: 'channel.event.deactivated', data: { channel: context.id } })),
      ],
    },
    'interaction.event.started': {
      actions: [
        assign({
          interactions: ({ context, event }) => [
            ...context.interactions,
            { id: event.interaction, media: context.media },
          ],
        }),
        emit(({ context, event }) => ({
          type: 'channel.event.interactionStarted',
          data: { channel: context.id, interaction: event.interaction },
        })),
      ],
    },
    'interaction.event.ended': {
      actions: [
        assign({
          interactions: ({ context, event }) =>
            context.interactions.filter((i) => i.id !== event.interaction),
        }),
        emit(({ context, event }) => ({
          type: 'channel.event.interactionEnded',
          data: { channel: context.id, interaction: event.interaction },
        })),
      ],
    },
  },
  states: {
    LoggedOff: {
      on: { 'agent.login': { guard: 'byReply', target: 'NotReady' } },
    },
    NotReady: {},
    Ready: {},
    Reserved: {},
    Talking: {},
    WorkingAfterCall: {},
  },
});

// ---------------------------------------------------------------------------
// What the workflows share.

const channelState = (c) => c.ref.getSnapshot().value;
const channelData = (c) => c.ref.getSnapshot().context;

/** Lets the session's channel machines hear an operation that succeeded, or a switch event. */
function hear(session, event) {
  const only = event.channel;
  for (const c of session.channels) {
    if (only == null || only === c.id) c.ref.send(event);
  }
}

// hisflow's `operation`: the switch call, then, if it succeeded, the channel
// machines hear it before the workflow takes its next step. An invoked actor
// that reports back, as XState would have any service call: assign and
// enqueueActions must stay free of effects, and a custom action cannot answer.
const operation = fromCallback(({ input: { sw, session, op }, sendBack }) => {
  const reply = sw.call(session.agent, op);
  if (reply.ok) {
    hear(session, op);
    sendBack({ type: 'switch.ok' });
  } else {
    sendBack({ type: 'switch.error', error: switchError(reply.error, op) });
  }
});

const actions = {
  publish: ({ context }, event) => {
    context.session.outbox.push(event);
  },
  keepError: assign({ error: ({ event }) => event.error }),
};

/**
 * An `op` state: `ok` on success, `otherwise` with `error` set. No timer for
 * its `timeout: 5s`: the switch answers at once, as hisflow's simulated one
 * does, which starts none either.
 */
const op = (build, ok, otherwise) => ({
  invoke: {
    src: 'operation',
    input: ({ context }) => ({ sw: context.sw, session: context.session, op: build(context) }),
  },
  on: {
    'switch.ok': ok,
    'switch.error': { target: otherwise, actions: 'keepError' },
  },
});

/** An `emit` state. */
const publish = (name, data, next) => ({
  entry: { type: 'publish', params: ({ context }) => ({ name, data: data(context) }) },
  always: next,
});

/**
 * A `foreach` over a called workflow with `on_failure: abort`: the list is
 * taken once, on entry; a failed call ends the loop with `error` set.
 */
const foreach = ({ items, src, args, done, failed }) => ({
  entry: assign({ items: ({ context }) => items(context), next: 0 }),
  initial: 'next',
  states: {
    next: {
      always: [
        { guard: ({ context }) => context.next < context.items.length, target: 'item' },
        { target: done },
      ],
    },
    item: {
      invoke: {
        id: 'step',
        src,
        input: ({ context }) => ({
          platform: context.platform,
          sw: context.sw,
          session: context.session,
          request: args(context.items[context.next], context),
        }),
        onDone: [
          {
            guard: ({ event }) => !event.output.ok,
            target: failed,
            actions: assign({
              error: ({ context, event }) => ({
                ...event.output.error,
                operation: src,
                channel: context.items[context.next].id,
              }),
            }),
          },
          { target: 'next', actions: assign({ next: ({ context }) => context.next + 1 }) },
        ],
      },
      // The switch's events reach the called workflow that waits for them.
      on: { 'agent.event.*': { actions: forwardTo('step') } },
    },
  },
});

const workflowContext = ({ input }) => ({
  platform: input.platform,
  sw: input.sw,
  session: input.session,
  request: input.request,
  error: null,
  items: [],
  next: 0,
});

// ---------------------------------------------------------------------------
// go_not_ready.yaml

const goNotReady = setup({
  actors: { operation },
  actions,
  guards: {
    unknownChannel: ({ context: { session, request } }) =>
      !session.channels.some((c) => c.id === request.channel),
    // Nothing to do, unless another reason is asked for; where the state is
    // the agent's, while no channel is Ready.
    nothingToDo: ({ context: { platform, session, request } }) =>
      !has(request, 'reason') &&
      (platform.status_scope === 'channel'
        ? session.channels.some((c) => c.id === request.channel && channelState(c) === 'NotReady')
        : !session.channels.some((c) => channelState(c) === 'Ready')),
    needReason: ({ context: { platform, session, request } }) =>
      platform.not_ready_reason === 'if_configured' &&
      session.notReadyReasons.length > 0 &&
      !has(request, 'reason'),
    byEvent: ({ context }) => context.platform.confirmation === 'event',
    agentScope: ({ context }) => context.platform.status_scope === 'agent',
  },
}).createMachine({
  id: 'go_not_ready',
  context: workflowContext,
  initial: 'check_channel',
  output: ({ event }) => event.output,
  states: {
    check_channel: {
      always: [
        { guard: 'unknownChannel', target: 'unknown_channel' },
        { guard: 'nothingToDo', target: 'done' },
        { guard: 'needReason', target: 'need_reason' },
        { target: 'set_not_ready' },
      ],
    },
    need_reason: respond(({ context }) => GO_NOT_READY.needReason(context)),
    unknown_channel: respond(({ context }) => GO_NOT_READY.unknownChannel(context)),
    set_not_ready: op(
      ({ platform, request }) => ({
        type: 'agent.set_not_ready',
        // Where the state is the agent's, it changes for every channel.
        channel: platform.status_scope === 'channel' ? request.channel : null,
        reason: has(request, 'reason') ? request.reason : null,
        reject_pending: false,
      }),
      'confirmed_how',
      'refused',
    ),
    confirmed_how: {
      always: [
        { guard: 'byEvent', target: 'await_not_ready' },
        { guard: 'agentScope', target: 'done' },
        { target: 'state_changed' },
      ],
    },
    await_not_ready: {
      on: {
        'agent.event.stateChanged': {
          guard: ({ context, event }) =>
            event.channel === context.request.channel && event.state === 'NotReady',
          target: 'done',
        },
      },
      after: { [CONFIRM_TIMEOUT]: 'not_confirmed' },
    },
    not_confirmed: respond(({ context }) => GO_NOT_READY.notConfirmed(context)),
    state_changed: publish(
      'channel.event.stateChanged',
      ({ request }) => ({
        channel: request.channel,
        state: 'NotReady',
        reason: has(request, 'reason') ? request.reason : null,
      }),
      'done',
    ),
    done: respond(() => okResponse()),
    refused: respond(({ context }) => GO_NOT_READY.refused(context)),
  },
});

// ---------------------------------------------------------------------------
// deactivate_channel.yaml

const deactivateChannel = setup({
  actors: { operation },
  actions,
  guards: {
    unknownChannel: ({ context: { session, request } }) =>
      !session.channels.some((c) => c.id === request.channel),
    noneDeactivatable: ({ context }) => context.platform.deactivatable_media.length === 0,
    mediaNotDeactivatable: ({ context: { platform, session, request } }) =>
      platform.media.some((m) => !deactivatable(platform, m)) &&
      session.channels.some((c) => c.id === request.channel && !deactivatable(platform, c.media)),
    alreadyInactive: ({ context: { session, request } }) =>
      session.channels.some((c) => c.id === request.channel && !channelData(c).active),
    byEvent: ({ context }) => context.platform.confirmation === 'event',
  },
}).createMachine({
  id: 'deactivate_channel',
  context: workflowContext,
  initial: 'check_channel',
  output: ({ event }) => event.output,
  states: {
    check_channel: {
      always: [
        { guard: 'unknownChannel', target: 'unknown_channel' },
        { guard: 'noneDeactivatable', target: 'not_supported' },
        { guard: 'mediaNotDeactivatable', target: 'not_supported' },
        { guard: 'alreadyInactive', target: 'done' },
        { target: 'deactivate' },
      ],
    },
    not_supported: respond(({ context: { session, request } }) =>
      DEACTIVATE_CHANNEL.notSupported({ channels: session.channels, request }),
    ),
    unknown_channel: respond(({ context }) => DEACTIVATE_CHANNEL.unknownChannel(context)),
    deactivate: op(
      ({ request }) => ({ type: 'channel.deactivate', channel: request.channel }),
      'confirmed_how',
      'refused',
    ),
    confirmed_how: {
      always: [{ guard: 'byEvent', target: 'await_deactivate' }, { target: 'deactivated' }],
    },
    await_deactivate: {
      on: {
        'agent.event.channelDeactivated': {
          guard: ({ context, event }) => event.channel === context.request.channel,
          target: 'done',
        },
      },
      after: { [CONFIRM_TIMEOUT]: 'not_confirmed' },
    },
    not_confirmed: respond(({ context }) => DEACTIVATE_CHANNEL.notConfirmed(context)),
    deactivated: publish(
      'channel.event.deactivated',
      ({ request }) => ({ channel: request.channel }),
      'done',
    ),
    done: respond(() => okResponse()),
    refused: respond(({ context }) => DEACTIVATE_CHANNEL.refused(context)),
  },
});

// ---------------------------------------------------------------------------
// dispose_channel.yaml and dispose_session.yaml: HIS's own operations, done
// where they are (no switch, no machine hears them).

const disposeChannel = setup({
  actions: {
    ...actions,
    // The channel and its machine go. A new list rather than a splice: the
    // foreach disposing of the channels walks the list it took on entry.
    dispose: ({ context: { session, request } }) => {
      const gone = session.channels.find((c) => c.id === request.channel);
      session.channels = session.channels.filter((c) => c.id !== request.channel);
      gone?.ref.stop();
    },
  },
}).createMachine({
  id: 'dispose_channel',
  context: workflowContext,
  initial: 'dispose',
  output: ({ event }) => event.output,
  states: {
    dispose: { entry: 'dispose', always: 'disposed' },
    disposed: publish('channel.event.disposed', ({ request }) => ({ channel: request.channel }), 'done'),
    done: respond(() => okResponse()),
  },
});

const disposeSession = setup({
  actors: { dispose_channel: disposeChannel },
  actions: {
    ...actions,
    disposeGroup: ({ context }) => {
      context.session.group = false;
    },
    disposeSession: ({ context }) => {
      context.session.disposed = true;
    },
  },
}).createMachine({
  id: 'dispose_session',
  context: workflowContext,
  initial: 'dispose_channels',
  output: ({ event }) => event.output,
  states: {
    dispose_channels: foreach({
      items: ({ session }) => session.channels,
      src: 'dispose_channel',
      args: (channel) => ({ channel: channel.id }),
      done: '#dispose_session.dispose_group',
      failed: '#dispose_session.dispose_group',
    }),
    dispose_group: { entry: 'disposeGroup', always: 'group_disposed' },
    group_disposed: publish(
      'channelGroup.event.disposed',
      ({ session }) => ({ agent: session.agent }),
      'dispose',
    ),
    dispose: { entry: 'disposeSession', always: 'session_disposed' },
    session_disposed: publish(
      'session.event.disposed',
      ({ session, request }) => ({
        agent: session.agent,
        session: session.id,
        cause: has(request, 'cause') ? request.cause : 'logout',
      }),
      'done',
    ),
    done: respond(() => okResponse()),
  },
});

// ---------------------------------------------------------------------------
// logout.yaml

const busyChannel = (session) =>
  session.channels.some((c) => {
    const d = channelData(c);
    return d.active && d.interactions.length > 0;
  });

const logoutMachine = setup({
  actors: {
    operation,
    go_not_ready: goNotReady,
    deactivate_channel: deactivateChannel,
    dispose_session: disposeSession,
  },
  actions,
  guards: {
    ...logoutGuards,
    ongoingInteraction: ({ context: { platform, session } }) =>
      platform.busy_logout !== 'pending' && busyChannel(session),
    requestPending: ({ context: { platform, session } }) =>
      platform.busy_logout === 'pending' && busyChannel(session),
  },
}).createMachine({
  id: 'logout',
  context: (args) => {
    const context = workflowContext(args);
    context.vars = { reason: logoutReason(context.platform, context.request) };
    return context;
  },
  initial: 'check_interactions',
  output: ({ event }) => event.output,
  states: {
    check_interactions: {
      always: [
        { guard: 'alreadyPending', target: 'already_pending' },
        { guard: 'ongoingInteraction', target: 'ongoing_interaction' },
        { guard: 'needReason', target: 'need_reason' },
        { guard: 'invalidReason', target: 'invalid_reason' },
        { guard: 'requestPending', target: 'request_pending' },
        { target: 'make_not_ready' },
      ],
    },
    already_pending: respond(LOGOUT.alreadyPending),
    request_pending: op(
      ({ vars }) => ({ type: 'agent.logout', reason: vars.reason }),
      'await_pending',
      'logout_refused',
    ),
    await_pending: {
      on: { 'agent.event.logoutPending': 'pending' },
      after: { [CONFIRM_TIMEOUT]: 'not_confirmed' },
    },
    pending: respond(LOGOUT.pending),
    ongoing_interaction: respond(LOGOUT.ongoingInteraction),
    need_reason: respond(({ context }) => LOGOUT.needReason(context)),
    invalid_reason: respond(({ context }) => LOGOUT.invalidReason(context)),
    make_not_ready: {
      always: [
        { guard: 'noNotReadyFirst', target: 'deactivate_channels' },
        { guard: 'agentScope', target: 'go_unavailable' },
        { target: 'make_channels_not_ready' },
      ],
    },
    go_unavailable: op(
      ({ platform }) => ({
        type: 'agent.set_not_ready',
        reason: platform.logout_not_ready_reason,
        reject_pending: platform.reject_pending_at_logout,
      }),
      'unavailable_how',
      'unavailable_failure',
    ),
    unavailable_how: {
      always: [{ guard: 'byEvent', target: 'await_unavailable' }, { target: 'deactivate_channels' }],
    },
    await_unavailable: {
      on: {
        'agent.event.stateChanged': {
          guard: ({ event }) => event.state === 'NotReady',
          target: 'deactivate_channels',
        },
      },
      after: { [CONFIRM_TIMEOUT]: 'unavailable_not_confirmed' },
    },
    unavailable_not_confirmed: respond(({ context }) => LOGOUT.unavailableNotConfirmed(context)),
    unavailable_failure: respond(({ context }) => LOGOUT.unavailableFailure(context)),
    make_channels_not_ready: foreach({
      items: ({ session }) => session.channels.filter((c) => channelState(c) === 'Ready'),
      src: 'go_not_ready',
      args: (channel, { platform }) => ({ channel: channel.id, reason: platform.logout_not_ready_reason }),
      done: '#logout.deactivate_channels',
      failed: '#logout.not_ready_failure',
    }),
    not_ready_failure: respond(({ context }) => LOGOUT.notReadyFailure(context)),
    deactivate_channels: foreach({
      items: ({ platform, session }) =>
        session.channels.filter((c) => channelData(c).active && deactivatable(platform, c.media)),
      src: 'deactivate_channel',
      args: (channel) => ({ channel: channel.id }),
      done: '#logout.logout_agent',
      failed: '#logout.deactivation_failure',
    }),
    deactivation_failure: respond(({ context }) => LOGOUT.deactivationFailure(context)),
    logout_agent: op(
      ({ vars }) => ({ type: 'agent.logout', reason: vars.reason }),
      'confirmed_how',
      'refused_why',
    ),
    // A switch that says the agent is not logged in has already done what
    // the logout asks.
    refused_why: {
      always: [{ guard: 'notLoggedIn', target: 'dispose' }, { target: 'logout_refused' }],
    },
    confirmed_how: {
      always: [{ guard: 'byEvent', target: 'await_logout' }, { target: 'dispose' }],
    },
    await_logout: {
      on: { 'agent.event.loggedOut': 'dispose' },
      after: { [CONFIRM_TIMEOUT]: 'not_confirmed' },
    },
    not_confirmed: respond(LOGOUT.notConfirmed),
    logout_refused: respond(({ context }) => LOGOUT.logoutRefused(context)),
    dispose: {
      invoke: {
        src: 'dispose_session',
        input: ({ context }) => ({
          platform: context.platform,
          sw: context.sw,
          session: context.session,
          request: {},
        }),
        onDone: 'logged_out',
      },
    },
    logged_out: respond(LOGOUT.loggedOut),
  },
});


// ---------------------------------------------------------------------------
// Sessions and requests, as HIS runs them.

/** A channel of `session` and its machine, in `state` already (as a login left it). */
function openChannel(session, platform, { id, media, state, active, interactions }) {
  const snapshot = channelMachine.resolveState({
    value: state,
    context: { platform, id, media, active, interactions },
  });
  const ref = createActor(channelMachine, { snapshot });
  ref.on('*', (e) => session.outbox.push({ name: e.type, data: e.data }));
  ref.start();
  return { id, media, ref };
}

/** `session.request.logout`: the response and the events, in order. */
function logout(platform, sw, session, request) {
  const events = [];
  session.outbox = events;
  const run = createActor(logoutMachine, { input: { platform, sw, session, request } });
  run.start();
  let snapshot = run.getSnapshot();
  // A switch that confirms by events: each reaches the channel machines,
  // then the run that waits for it.
  while (snapshot.status === 'active') {
    const event = sw.nextEvent(session.agent);
    if (!event) break;
    hear(session, event);
    run.send(event);
    snapshot = run.getSnapshot();
  }
  if (snapshot.status === 'active') run.stop();
  session.outbox = null;
  return { events, response: snapshot.status === 'done' ? snapshot.output : null };
}

const ACTORS = {
  name: 'actors',
  session: (platform, agent, options) =>
    sessionOf(agent, options, (s, channel) => openChannel(s, platform, channel)),
  logout,
  channel: (c) => ({ state: channelState(c), active: channelData(c).active }),
};

// ===========================================================================
// The lean variant: one machine, one actor per logout, no child actor.
//
// What the actors variant pays for is the actors themselves: creating,
// starting and stopping sixteen of them per logout, and relaying each answer
// between parent and child. Here the channels are records in the context and
// a switch call answers the run itself. XState's other cost is its steps:
// each eventless transition (microstep) and each event (macrostep) costs
// several microseconds whatever it does, so the called workflows, nested as
// compound states, take their decisions as guarded transitions rather than
// as states of their own (17 microsteps and 7 events per logout instead of
// 54 and 7 with every state nested as such). The logout keeps its states.

// ---------------------------------------------------------------------------
// The channel machine (channel.yaml) as a pure function over a channel's
// record `{ id, media, state, active, interactions }`: the same transitions,
// guards and emitted events as `channelMachine`, with no actor to run them.

const BUSY = ['Reserved', 'Talking'];

/**
 * What `event` (an operation the switch accepted, or the switch's own event)
 * makes of channel `c`: `{ channel, emitted }`, the record after it and what
 * the machine tells the MediaBar, if anything; undefined where channel.yaml
 * takes no transition.
 */
function channelTransition(platform, c, event) {
  const byReply = platform.confirmation === 'reply';
  switch (event.type) {
    case 'agent.login':
      return byReply && c.state === LOGGED_OFF ? { channel: { ...c, state: 'NotReady' } } : undefined;
    case 'agent.set_ready':
      if (byReply && platform.status_scope === 'channel') return { channel: { ...c, state: 'Ready' } };
      // Agent-wide, a channel offered or handling work keeps it.
      if (
        byReply &&
        platform.status_scope === 'agent' &&
        c.active &&
        c.state !== 'Ready' &&
        !BUSY.includes(c.state)
      ) {
        return {
          channel: { ...c, state: 'Ready' },
          emitted: { type: 'channel.event.stateChanged', data: { channel: c.id, state: 'Ready' } },
        };
      }
      return undefined;
    case 'agent.set_not_ready':
      if (byReply && platform.status_scope === 'channel') return { channel: { ...c, state: 'NotReady' } };
      // Agent-wide, work on offer stays pending unless the change rejects
      // it, and work accepted stays.
      if (
        byReply &&
        platform.status_scope === 'agent' &&
        (!BUSY.includes(c.state) || (c.state === 'Reserved' && event.reject_pending === true))
      ) {
        return {
          channel: { ...c, state: 'NotReady' },
          emitted: {
            type: 'channel.event.stateChanged',
            data: { channel: c.id, state: 'NotReady', reason: event.reason ?? null },
          },
        };
      }
      return undefined;
    case 'agent.logout':
      // A logout the switch defers leaves a channel with an interaction as
      // it is, until the switch logs the agent out.
      return byReply && c.interactions.length === 0 ? { channel: { ...c, state: LOGGED_OFF } } : undefined;
    case 'channel.activate':
    case 'channel.deactivate':
      return byReply && platform.deactivatable_media.length > 0
        ? { channel: { ...c, active: event.type === 'channel.activate' } }
        : undefined;
    case 'agent.event.stateChanged':
      return CHANNEL_STATES.includes(event.state) && event.state !== c.state
        ? {
            channel: { ...c, state: event.state },
            emitted: {
              type: 'channel.event.stateChanged',
              data: { channel: c.id, state: event.state, reason: event.reason ?? null },
            },
          }
        : undefined;
    case 'agent.event.channelActivated':
    case 'agent.event.channelDeactivated': {
      const active = event.type === 'agent.event.channelActivated';
      return platform.switch_toggles_channels && c.active !== active
        ? {
            channel: { ...c, active },
            emitted: {
              type: active ? 'channel.event.activated' : 'channel.event.deactivated',
              data: { channel: c.id },
            },
          }
        : undefined;
    }
    case 'interaction.event.started':
      return {
        channel: { ...c, interactions: [...c.interactions, { id: event.interaction, media: c.media }] },
        emitted: {
          type: 'channel.event.interactionStarted',
          data: { channel: c.id, interaction: event.interaction },
        },
      };
    case 'interaction.event.ended':
      return {
        channel: { ...c, interactions: c.interactions.filter((i) => i.id !== event.interaction) },
        emitted: {
          type: 'channel.event.interactionEnded',
          data: { channel: c.id, interaction: event.interaction },
        },
      };
    default:
      return undefined;
  }
}

/**
 * The channels after `event`, which reaches the channel it names or, naming
 * none, every channel (as `hear` sends it to the channel actors), and what
 * they tell the MediaBar, in the channels' order. The list is copied only if
 * a channel changes.
 */
function channelsAfter(platform, channels, event) {
  let after = channels;
  const emitted = [];
  for (let i = 0; i < channels.length; i++) {
    const c = channels[i];
    if (event.channel != null && event.channel !== c.id) continue;
    const t = channelTransition(platform, c, event);
    if (!t) continue;
    if (after === channels) after = channels.slice();
    after[i] = t.channel;
    if (t.emitted) emitted.push(t.emitted);
  }
  return { channels: after, emitted };
}

/**
 * The action by which the channels hear an event (`pick` finds it in the
 * run's event): their records change in the context, and what they tell the
 * MediaBar is emitted. `enqueueActions` keeps it free of effects: it computes,
 * and XState applies.
 */
const hearing = (pick) =>
  enqueueActions(({ context, event, enqueue }) => {
    const { channels, emitted } = channelsAfter(context.platform, context.channels, pick(event));
    if (channels !== context.channels) enqueue.assign({ channels });
    for (const e of emitted) enqueue.emit(e);
  });

// ---------------------------------------------------------------------------
// The parts the states are made of.

/**
 * An `op` state: `ok`, the transitions (guarded, in order) on success;
 * `otherwise`, the transition on failure. The switch call is its entry
 * action, and the answer comes back to the run as an event (`switch.ok` or
 * `switch.error`): an action cannot return a value to the machine, and
 * invoking an actor for it is what this variant leaves out. On `switch.ok`
 * the channels hear the operation before the workflow takes its next step,
 * as in hisflow. No timer for its `timeout: 5s`, as in the actors variant:
 * the switch answers at once.
 */
const switchCall = (build, ok, otherwise) => ({
  entry: { type: 'call', params: ({ context }) => build(context) },
  on: {
    'switch.ok': ok.map((t) => ({ ...t, actions: ['hearOp'].concat(t.actions ?? []) })),
    'switch.error': otherwise,
  },
});

/** An `emit` action: the run's event, which the request handler collects. */
const tell = (name, data) => emit(({ context }) => ({ type: name, data: data(context) }));

// A `foreach` over a called workflow is a compound state: its items (the
// calls' requests) are taken once, on entry, and the called workflow's states
// are nested in it, its decisions folded into guarded transitions, so that a
// call costs XState as few steps as it can. Its `check_channel` takes the
// next item, or ends the loop.

const takeItems = (items) => assign({ items: ({ context }) => items(context), next: 0 });

/** The request of the call under way. */
const callOf = (context) => context.items[context.next];

/** The call answered ok: on to the next item. */
const nextItem = (actions = []) => ({ target: 'check_channel', actions: [...actions, 'nextItem'] });

/**
 * A call whose response is not ok ends the loop at `failed` (`on_failure:
 * abort`), with `error` set as hisflow sets it: the response's error, the
 * workflow and the channel. `response` reads the call's request as
 * `request`, and the switch's error as `error` where it is one.
 */
const abort = (workflow, response, failed, { switchError = false } = {}) => ({
  target: failed,
  actions: [
    ...(switchError ? ['keepError'] : []),
    assign({
      error: ({ context }) => {
        const request = callOf(context);
        return {
          ...response({ ...context, request }).error,
          operation: workflow,
          channel: request.channel,
        };
      },
    }),
  ],
});

// ---------------------------------------------------------------------------
// go_not_ready.yaml, for each Ready channel.

const makeChannelsNotReady = ({ done, failed }) => {
  const fail = (response, options) => abort('go_not_ready', response, failed, options);
  return {
    entry: takeItems(({ platform, channels }) =>
      channels
        .filter((c) => c.state === 'Ready')
        .map((c) => ({ channel: c.id, reason: platform.logout_not_ready_reason })),
    ),
    initial: 'check_channel',
    states: {
      check_channel: {
        always: [
          { guard: 'allDone', target: done },
          { guard: 'unknownChannel', ...fail(GO_NOT_READY.unknownChannel) },
          // Nothing to do, unless another reason is asked for; where the
          // state is the agent's, while no channel is Ready.
          { guard: 'nothingToDo', ...nextItem() },
          { guard: 'notReadyReasonNeeded', ...fail(GO_NOT_READY.needReason) },
          { target: 'set_not_ready' },
        ],
      },
      set_not_ready: switchCall(
        (context) => {
          const call = callOf(context);
          return {
            type: 'agent.set_not_ready',
            // Where the state is the agent's, it changes for every channel.
            channel: context.platform.status_scope === 'channel' ? call.channel : null,
            reason: has(call, 'reason') ? call.reason : null,
            reject_pending: false,
          };
        },
        // confirmed_how: the switch's event will say it is done; where the
        // change was the agent's, the channels have told the MediaBar; or
        // the workflow tells it (state_changed).
        [
          { guard: 'byEvent', target: 'await_not_ready' },
          { guard: 'agentScope', ...nextItem() },
          nextItem([
            tell('channel.event.stateChanged', (context) => {
              const call = callOf(context);
              return {
                channel: call.channel,
                state: 'NotReady',
                reason: has(call, 'reason') ? call.reason : null,
              };
            }),
          ]),
        ],
        fail(GO_NOT_READY.refused, { switchError: true }),
      ),
      await_not_ready: {
        on: {
          'agent.event.stateChanged': {
            guard: ({ context, event }) =>
              event.channel === callOf(context).channel && event.state === 'NotReady',
            ...nextItem(['hearSwitch']),
          },
        },
        after: { [CONFIRM_TIMEOUT]: fail(GO_NOT_READY.notConfirmed) },
      },
    },
  };
};

// ---------------------------------------------------------------------------
// deactivate_channel.yaml, for each active channel the platform deactivates.

const deactivateChannels = ({ done, failed }) => {
  const fail = (response, options) => abort('deactivate_channel', response, failed, options);
  return {
    entry: takeItems(({ platform, channels }) =>
      channels
        .filter((c) => c.active && deactivatable(platform, c.media))
        .map((c) => ({ channel: c.id })),
    ),
    initial: 'check_channel',
    states: {
      check_channel: {
        always: [
          { guard: 'allDone', target: done },
          { guard: 'unknownChannel', ...fail(DEACTIVATE_CHANNEL.unknownChannel) },
          { guard: 'noneDeactivatable', ...fail(DEACTIVATE_CHANNEL.notSupported) },
          { guard: 'mediaNotDeactivatable', ...fail(DEACTIVATE_CHANNEL.notSupported) },
          { guard: 'alreadyInactive', ...nextItem() },
          { target: 'deactivate' },
        ],
      },
      deactivate: switchCall(
        (context) => ({ type: 'channel.deactivate', channel: callOf(context).channel }),
        // confirmed_how: the switch's event will say it is done, or the
        // workflow tells the MediaBar (deactivated).
        [
          { guard: 'byEvent', target: 'await_deactivate' },
          nextItem([tell('channel.event.deactivated', (context) => ({ channel: callOf(context).channel }))]),
        ],
        fail(DEACTIVATE_CHANNEL.refused, { switchError: true }),
      ),
      await_deactivate: {
        on: {
          'agent.event.channelDeactivated': {
            guard: ({ context, event }) => event.channel === callOf(context).channel,
            ...nextItem(['hearSwitch']),
          },
        },
        after: { [CONFIRM_TIMEOUT]: fail(DEACTIVATE_CHANNEL.notConfirmed) },
      },
    },
  };
};

// ---------------------------------------------------------------------------
// dispose_session.yaml, with dispose_channel.yaml for each channel: HIS's own
// operations (no switch, no channel hears them) and their events, with no
// decision to take: one action list. `enqueueActions` keeps the order of
// hisflow's steps.

const disposeSessionActions = enqueueActions(({ context: { channels, session }, enqueue }) => {
  for (const c of channels) enqueue.emit({ type: 'channel.event.disposed', data: { channel: c.id } });
  // The channels' records go (all of them: the session goes too).
  enqueue.assign({ channels: [] });
  enqueue('disposeGroup');
  enqueue.emit({ type: 'channelGroup.event.disposed', data: { agent: session.agent } });
  enqueue('disposeSessionRecord');
  // Called with no cause.
  enqueue.emit({
    type: 'session.event.disposed',
    data: { agent: session.agent, session: session.id, cause: 'logout' },
  });
});

// ---------------------------------------------------------------------------
// logout.yaml, its states as states, with the called workflows nested.

const channelOfCall = (context) => {
  const { channel } = callOf(context);
  return context.channels.find((c) => c.id === channel);
};

const leanLogoutMachine = setup({
  actions: {
    // A custom action is XState's place for an effect; `self.send` queues
    // the answer, which the run takes once this step is done.
    call: ({ context, self }, op) => {
      const reply = context.sw.call(context.session.agent, op);
      self.send(
        reply.ok
          ? { type: 'switch.ok', op }
          : { type: 'switch.error', error: switchError(reply.error, op) },
      );
    },
    keepError: assign({ error: ({ event }) => event.error }),
    hearOp: hearing((event) => event.op),
    hearSwitch: hearing((event) => event),
    nextItem: assign({ next: ({ context }) => context.next + 1 }),
    disposeSession: disposeSessionActions,
    disposeGroup: ({ context }) => {
      context.session.group = false;
    },
    disposeSessionRecord: ({ context }) => {
      context.session.disposed = true;
    },
  },
  guards: {
    ...logoutGuards,
    ongoingInteraction: ({ context: { platform, channels } }) =>
      platform.busy_logout !== 'pending' && channels.some((c) => c.active && c.interactions.length > 0),
    requestPending: ({ context: { platform, channels } }) =>
      platform.busy_logout === 'pending' && channels.some((c) => c.active && c.interactions.length > 0),
    // The called workflows', over the call's request.
    allDone: ({ context }) => context.next >= context.items.length,
    unknownChannel: ({ context }) => channelOfCall(context) === undefined,
    nothingToDo: ({ context }) =>
      !has(callOf(context), 'reason') &&
      (context.platform.status_scope === 'channel'
        ? channelOfCall(context).state === 'NotReady'
        : !context.channels.some((c) => c.state === 'Ready')),
    notReadyReasonNeeded: ({ context }) =>
      context.platform.not_ready_reason === 'if_configured' &&
      context.session.notReadyReasons.length > 0 &&
      !has(callOf(context), 'reason'),
    noneDeactivatable: ({ context }) => context.platform.deactivatable_media.length === 0,
    mediaNotDeactivatable: ({ context }) =>
      context.platform.media.some((m) => !deactivatable(context.platform, m)) &&
      !deactivatable(context.platform, channelOfCall(context).media),
    alreadyInactive: ({ context }) => !channelOfCall(context).active,
  },
}).createMachine({
  id: 'logout',
  context: ({ input: { platform, sw, session, request } }) => ({
    platform,
    sw,
    session,
    request,
    vars: { reason: logoutReason(platform, request) },
    // The channels' records, as the session keeps them between requests.
    channels: session.channels,
    // The foreach under way: the calls' requests, and the one under way.
    items: [],
    next: 0,
    error: null,
  }),
  initial: 'check_interactions',
  output: ({ event }) => event.output,
  // Every switch event reaches the channels; a state that waits for one
  // takes it with the same action, as a state's transition replaces the
  // machine's.
  on: { 'agent.event.*': { actions: 'hearSwitch' } },
  states: {
    check_interactions: {
      always: [
        { guard: 'alreadyPending', target: 'already_pending' },
        { guard: 'ongoingInteraction', target: 'ongoing_interaction' },
        { guard: 'needReason', target: 'need_reason' },
        { guard: 'invalidReason', target: 'invalid_reason' },
        { guard: 'requestPending', target: 'request_pending' },
        { target: 'make_not_ready' },
      ],
    },
    already_pending: respond(LOGOUT.alreadyPending),
    request_pending: switchCall(
      ({ vars }) => ({ type: 'agent.logout', reason: vars.reason }),
      [{ target: 'await_pending' }],
      { target: 'logout_refused', actions: 'keepError' },
    ),
    await_pending: {
      on: { 'agent.event.logoutPending': { target: 'pending', actions: 'hearSwitch' } },
      after: { [CONFIRM_TIMEOUT]: 'not_confirmed' },
    },
    pending: respond(LOGOUT.pending),
    ongoing_interaction: respond(LOGOUT.ongoingInteraction),
    need_reason: respond(({ context }) => LOGOUT.needReason(context)),
    invalid_reason: respond(({ context }) => LOGOUT.invalidReason(context)),
    make_not_ready: {
      always: [
        { guard: 'noNotReadyFirst', target: 'deactivate_channels' },
        { guard: 'agentScope', target: 'go_unavailable' },
        { target: 'make_channels_not_ready' },
      ],
    },
    go_unavailable: switchCall(
      ({ platform }) => ({
        type: 'agent.set_not_ready',
        reason: platform.logout_not_ready_reason,
        reject_pending: platform.reject_pending_at_logout,
      }),
      [{ target: 'unavailable_how' }],
      { target: 'unavailable_failure', actions: 'keepError' },
    ),
    unavailable_how: {
      always: [{ guard: 'byEvent', target: 'await_unavailable' }, { target: 'deactivate_channels' }],
    },
    await_unavailable: {
      on: {
        'agent.event.stateChanged': {
          guard: ({ event }) => event.state === 'NotReady',
          target: 'deactivate_channels',
          actions: 'hearSwitch',
        },
      },
      after: { [CONFIRM_TIMEOUT]: 'unavailable_not_confirmed' },
    },
    unavailable_not_confirmed: respond(({ context }) => LOGOUT.unavailableNotConfirmed(context)),
    unavailable_failure: respond(({ context }) => LOGOUT.unavailableFailure(context)),
    make_channels_not_ready: makeChannelsNotReady({
      done: '#logout.deactivate_channels',
      failed: '#logout.not_ready_failure',
    }),
    not_ready_failure: respond(({ context }) => LOGOUT.notReadyFailure(context)),
    deactivate_channels: deactivateChannels({
      done: '#logout.logout_agent',
      failed: '#logout.deactivation_failure',
    }),
    deactivation_failure: respond(({ context }) => LOGOUT.deactivationFailure(context)),
    logout_agent: switchCall(
      ({ vars }) => ({ type: 'agent.logout', reason: vars.reason }),
      [{ target: 'confirmed_how' }],
      { target: 'refused_why', actions: 'keepError' },
    ),
    // A switch that says the agent is not logged in has already done what
    // the logout asks.
    refused_why: {
      always: [{ guard: 'notLoggedIn', target: 'dispose' }, { target: 'logout_refused' }],
    },
    confirmed_how: {
      always: [{ guard: 'byEvent', target: 'await_logout' }, { target: 'dispose' }],
    },
    await_logout: {
      on: { 'agent.event.loggedOut': { target: 'dispose', actions: 'hearSwitch' } },
      after: { [CONFIRM_TIMEOUT]: 'not_confirmed' },
    },
    not_confirmed: respond(LOGOUT.notConfirmed),
    logout_refused: respond(({ context }) => LOGOUT.logoutRefused(context)),
    dispose: { entry: 'disposeSession', always: 'logged_out' },
    logged_out: respond(LOGOUT.loggedOut),
  },
});

/** `session.request.logout`, lean: the response and the events, in order. */
function leanLogout(platform, sw, session, request) {
  const events = [];
  const run = createActor(leanLogoutMachine, { input: { platform, sw, session, request } });
  run.on('*', (e) => events.push({ name: e.type, data: e.data }));
  run.start();
  let snapshot = run.getSnapshot();
  // A switch that confirms by events: each reaches the run, whose channels
  // hear it before the state that waits for it.
  while (snapshot.status === 'active') {
    const event = sw.nextEvent(session.agent);
    if (!event) break;
    run.send(event);
    snapshot = run.getSnapshot();
  }
  if (snapshot.status === 'active') run.stop();
  // The session keeps its channels' records for its next request.
  session.channels = snapshot.context.channels;
  return { events, response: snapshot.status === 'done' ? snapshot.output : null };
}

const LEAN = {
  name: 'lean',
  // A channel is its record, as a login left it.
  session: (platform, agent, options) => sessionOf(agent, options, (s, channel) => channel),
  logout: leanLogout,
  channel: (c) => c,
};

const VARIANTS = { actors: ACTORS, lean: LEAN };

// ---------------------------------------------------------------------------
// --check: the events of the benchmark's logout, and the reference's other
// flows (workflows/reference/scenarios), against what hisflow gives; and the
// lean variant against the actors variant in every flow.

const REQUEST = Object.freeze({ reason: 'Lunch' });

const EXPECTED_EVENTS = [
  { name: 'channel.event.stateChanged', data: { channel: 'voice', state: 'NotReady', reason: 'Logout' } },
  { name: 'channel.event.stateChanged', data: { channel: 'email', state: 'NotReady', reason: 'Logout' } },
  { name: 'channel.event.deactivated', data: { channel: 'voice' } },
  { name: 'channel.event.deactivated', data: { channel: 'email' } },
  { name: 'channel.event.deactivated', data: { channel: 'chat' } },
  { name: 'channel.event.disposed', data: { channel: 'voice' } },
  { name: 'channel.event.disposed', data: { channel: 'email' } },
  { name: 'channel.event.disposed', data: { channel: 'chat' } },
  { name: 'channelGroup.event.disposed', data: { agent: 'agent-0' } },
  { name: 'session.event.disposed', data: { agent: 'agent-0', session: 'session-0', cause: 'logout' } },
];

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

function expect(what, actual, expected) {
  if (!same(actual, expected)) {
    throw new Error(
      `${what}:\n  expected ${JSON.stringify(expected)}\n  got      ${JSON.stringify(actual)}`,
    );
  }
}

/** Every logout went through: the session disposed of, the agent logged out of the switch. */
function assertLoggedOut(s, sw, out) {
  const agent = sw.agents.get(s.agent);
  if (
    !out.response?.ok ||
    out.response.close !== true ||
    !s.disposed ||
    s.group ||
    s.channels.length !== 0 ||
    !agent ||
    agent.loggedIn ||
    agent.logoutReason !== 'Lunch' ||
    [...agent.channels.values()].some((c) => c.state !== LOGGED_OFF || c.active)
  ) {
    throw new Error(`the logout of ${s.agent} did not go through: ${JSON.stringify(out.response)}`);
  }
}

function switchChannels(sw, agent) {
  return Object.fromEntries(
    [...sw.agents.get(agent).channels].map(([id, c]) => [id, `${c.state}${c.active ? '' : ' inactive'}`]),
  );
}

function sessionChannels(variant, s) {
  return Object.fromEntries(
    s.channels.map((c) => {
      const { state, active } = variant.channel(c);
      return [c.id, `${state}${active ? '' : ' inactive'}`];
    }),
  );
}

/**
 * The flows --check runs, each on a variant: it checks what hisflow gives
 * and returns the logout's events and response, for the variants to be
 * compared with each other.
 */
const FLOWS = {
  // Basic flow: the benchmark's logout.
  'basic flow': (v) => {
    const s = v.session(REFERENCE, 0);
    const sw = simSwitch(1);
    const out = v.logout(REFERENCE, sw, s, REQUEST);
    expect('events', out.events, EXPECTED_EVENTS);
    expect('response', out.response, { ok: true, result: {}, close: true });
    assertLoggedOut(s, sw, out);
    return out;
  },
  // The same, on a switch that confirms by events: the channel machines
  // change on the switch's events and tell the MediaBar; the workflows wait.
  'confirmation by event': (v) => {
    const platform = { ...REFERENCE, confirmation: 'event' };
    const s = v.session(platform, 0);
    const sw = simSwitch(1, { confirmByEvent: true });
    const out = v.logout(platform, sw, s, REQUEST);
    expect('events', out.events, EXPECTED_EVENTS);
    assertLoggedOut(s, sw, out);
    return out;
  },
  // EF1: an email is open; nothing changes.
  EF1: (v) => {
    const interactions = { email: ['mail-42'] };
    const s = v.session(REFERENCE, 0, { interactions });
    const sw = simSwitch(1, { interactions });
    const out = v.logout(REFERENCE, sw, s, REQUEST);
    expect('events', out.events, []);
    expect('response', out.response, {
      ok: false,
      error: {
        code: 'OngoingInteraction',
        message: 'You cannot log out while an interaction is in progress. Finish it, then log out.',
      },
    });
    expect('session', sessionChannels(v, s), { voice: 'Ready', email: 'Ready', chat: 'NotReady' });
    expect('switch', switchChannels(sw, s.agent), { voice: 'Ready', email: 'Ready', chat: 'NotReady' });
    return out;
  },
  // AF1: no reason, on a switch that requires one.
  AF1: (v) => {
    const s = v.session(REFERENCE, 0);
    const out = v.logout(REFERENCE, simSwitch(1), s, {});
    expect('events', out.events, []);
    expect('response', out.response, {
      ok: false,
      error: {
        code: 'NeedInfo',
        need: {
          field: 'reason',
          message: 'Select a logout reason.',
          choices: ['Lunch', 'End of shift'],
          free_text: false,
          optional: false,
        },
      },
    });
    return out;
  },
  // AF1: a reason that is not one of the switch's.
  'AF1, unknown reason': (v) => {
    const s = v.session(REFERENCE, 0);
    const out = v.logout(REFERENCE, simSwitch(1), s, { reason: 'Gym' });
    expect('response', out.response, {
      ok: false,
      error: {
        code: 'ReasonCodeOutOfRange',
        message: "'Gym' is not a logout reason of this switch. Choose one of the listed reasons.",
      },
    });
    return out;
  },
  // EF2: Not Ready fails on the second of three Ready channels.
  EF2: (v) => {
    const s = v.session(REFERENCE, 0, { ready: 3 });
    const sw = simSwitch(1, { ready: 3 });
    sw.fault('agent.set_not_ready', 2, { code: 'InvalidState', message: 'the agent is reserved for a call' });
    const out = v.logout(REFERENCE, sw, s, REQUEST);
    expect('events', out.events, [EXPECTED_EVENTS[0]]);
    expect('response', out.response, {
      ok: false,
      error: {
        code: 'NotReadyFailed',
        message:
          'Logout failed. The switch did not make you Not Ready on email: the agent is reserved for a call. You are still logged in.',
      },
    });
    expect('session', sessionChannels(v, s), { voice: 'NotReady', email: 'Ready', chat: 'Ready' });
    expect('switch', switchChannels(sw, s.agent), { voice: 'NotReady', email: 'Ready', chat: 'Ready' });
    return out;
  },
  // EF3: the switch refuses to deactivate email; voice stays deactivated.
  EF3: (v) => {
    const s = v.session(REFERENCE, 0);
    const sw = simSwitch(1);
    sw.fault('channel.deactivate', 2, { code: 'InvalidState', message: 'email is busy' });
    const out = v.logout(REFERENCE, sw, s, REQUEST);
    expect('events', out.events, EXPECTED_EVENTS.slice(0, 3));
    expect('response', out.response, {
      ok: false,
      error: {
        code: 'DeactivationFailed',
        message:
          'Logout failed. The switch did not deactivate channel email: email is busy. You are still logged in.',
      },
    });
    expect('switch', switchChannels(sw, s.agent), {
      voice: 'NotReady inactive',
      email: 'NotReady',
      chat: 'NotReady',
    });
    return out;
  },
  // EF4: the switch refuses the logout after the channels were made Not
  // Ready and deactivated; the session stays (scenarios/timeout.yaml's
  // response, with the switch's refusal for its timeout).
  EF4: (v) => {
    const s = v.session(REFERENCE, 0);
    const sw = simSwitch(1);
    sw.fault('agent.logout', 1, { code: 'InvalidState', message: 'the agent is busy' });
    const out = v.logout(REFERENCE, sw, s, REQUEST);
    expect('events', out.events, EXPECTED_EVENTS.slice(0, 5));
    expect('response', out.response, {
      ok: false,
      error: {
        code: 'LogoutFailed',
        message: 'Logout failed. The switch did not log you out: the agent is busy. You are still logged in.',
      },
    });
    expect('session', [s.group, s.disposed, s.channels.length], [true, false, 3]);
    return out;
  },
  // EF4: a switch that says the agent is not logged in: the session is
  // disposed of all the same.
  'EF4, not logged in': (v) => {
    const s = v.session(REFERENCE, 0);
    const sw = simSwitch(1);
    sw.fault('agent.logout', 1, { code: 'AgentNotLoggedIn', message: 'agent-0 is not logged in' });
    const out = v.logout(REFERENCE, sw, s, REQUEST);
    expect('events', out.events, EXPECTED_EVENTS);
    expect('response', out.response, { ok: true, result: {}, close: true });
    expect('session', [s.group, s.disposed, s.channels.length], [false, true, 0]);
    return out;
  },
};

function check() {
  const results = {};
  for (const v of Object.values(VARIANTS)) {
    results[v.name] = {};
    for (const [flow, run] of Object.entries(FLOWS)) {
      try {
        results[v.name][flow] = run(v);
      } catch (e) {
        e.message = `${v.name}, ${flow}: ${e.message}`;
        throw e;
      }
    }
    const basic = results[v.name]['basic flow'];
    console.log(`${v.name}:`);
    for (const e of basic.events) console.log(`  ${e.name} ${JSON.stringify(e.data)}`);
    console.log(`  response ${JSON.stringify(basic.response)}`);
  }
  // Beyond what the flows check, the lean variant answers and tells the
  // MediaBar exactly what the actors variant does.
  for (const flow of Object.keys(FLOWS)) {
    expect(`${flow}: lean against actors`, results.lean[flow], results.actors[flow]);
  }
  console.log(
    `check: the events and responses are hisflow's, and the lean variant's the actors variant's, in ${
      Object.keys(FLOWS).length
    } flows`,
  );
}

// ---------------------------------------------------------------------------
// The measurement, as benches/engine.rs takes it.

// Preparing a round leaves thousands of objects (the actors variant's
// channel actors) for the collector: collect them before the clock starts,
// not in the middle of the round.
setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc');

/** Time per logout (ns) of one round of `n` agents, on fresh sessions and a fresh switch. */
function round(variant, n) {
  const sessions = Array.from({ length: n }, (_, a) => variant.session(REFERENCE, a));
  const sw = simSwitch(n);
  const outs = new Array(n);
  collect();
  const t = process.hrtime.bigint();
  for (let a = 0; a < n; a++) outs[a] = variant.logout(REFERENCE, sw, sessions[a], REQUEST);
  const elapsed = process.hrtime.bigint() - t;
  for (let a = 0; a < n; a++) assertLoggedOut(sessions[a], sw, outs[a]);
  return Number(elapsed) / n;
}

const USAGE = 'usage: node logout.mjs [--variant actors|lean] [--quick] [--json] | --check';

/** The variants to run: `--variant NAME`, or both. */
function chosenVariants(args) {
  const at = args.indexOf('--variant');
  if (at < 0) return Object.values(VARIANTS);
  const v = VARIANTS[args[at + 1]];
  if (!v) {
    console.error(USAGE);
    process.exit(2);
  }
  return [v];
}

function main() {
  const args = process.argv.slice(2);
  if (args.includes('--check')) {
    check();
    return;
  }
  const variants = chosenVariants(args);
  const [rounds, n] = args.includes('--quick') ? [3, 200] : [15, 2000];

  // The comparison is like for like only if the events are hisflow's.
  for (const v of variants) FLOWS['basic flow'](v);

  // Until the JIT has compiled the hot paths, a round measures the compiler.
  for (const v of variants) for (let i = 0; i < 3; i++) round(v, n);

  // The rounds alternate between the variants, so that a change in the
  // machine's load weighs on both alike.
  const per = new Map(variants.map((v) => [v, []]));
  for (let i = 0; i < rounds; i++) for (const v of variants) per.get(v).push(round(v, n));

  const figures = {};
  for (const [v, times] of per) {
    times.sort((a, b) => a - b);
    const median = times[times.length >> 1];
    figures[v.name] = {
      us_per_logout: Math.round(median / 10) / 100,
      logouts_per_s: Math.round(1e9 / median),
    };
  }
  const [bestName, best] = Object.entries(figures).reduce((a, b) =>
    b[1].us_per_logout < a[1].us_per_logout ? b : a,
  );

  const xstate = JSON.parse(
    readFileSync(new URL('./node_modules/xstate/package.json', import.meta.url), 'utf8'),
  ).version;
  const line = (name, f) =>
    `xstate ${xstate} ${name}: ${f.us_per_logout.toFixed(2)} µs/logout  ${f.logouts_per_s} logouts/s`;
  const human = Object.entries(figures).map(([name, f]) => line(name, f));
  if (variants.length > 1) human.push(line(`best (${bestName})`, best));
  if (args.includes('--json')) {
    // stdout carries the one JSON line a caller parses.
    console.error(human.join('\n'));
    console.log(
      JSON.stringify({
        xstate,
        node: process.version,
        variants: figures,
        us_per_logout: best.us_per_logout,
        logouts_per_s: best.logouts_per_s,
      }),
    );
  } else {
    console.log(human.join('\n'));
  }
}

main();
