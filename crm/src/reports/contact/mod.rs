//! The contact-center figures (Call-Center and KPI), computed by replaying the event log
//! over a period. Pure: facts in, figures out; [`super::contact_store`] reads the facts.
//! Every figure is defined in `README.md` beside this file.

use chrono::NaiveDate;
use chrono_tz::Tz;
use kolokol_engine::queue::QueueEventKind;
use std::collections::{BTreeMap, BTreeSet, HashMap};

pub mod cells;
mod record;

pub use record::{rank, FactReader};

/// What happened, at `at_ms`: a queue or operator event, or a step of an outbound call
/// (from the calls table).
#[derive(Debug, Clone)]
pub enum Fact {
    Queue(QueueEventKind),
    /// `operator` placed an outbound call.
    OutboundPlaced {
        operator: String,
        call: String,
    },
    /// The far end answered.
    OutboundConnected {
        operator: String,
        call: String,
    },
    /// A call was closed by a restart (`ended` with cause `interrupted`): whatever of it
    /// was still open — a caller waiting, a phone ringing, an operator talking — ends
    /// here.
    Interrupted {
        call: String,
    },
    /// The outbound call ended (connected or not).
    OutboundEnded {
        operator: String,
        call: String,
    },
}

/// The days a report covers, in a time zone, and the instant figures stop at (the end of
/// the period, or now while it lasts).
#[derive(Debug, Clone, PartialEq)]
pub struct Period {
    pub days: Vec<NaiveDate>,
    pub zone: Tz,
    /// Midnight of each day and of the day after the last, in ms since the epoch.
    bounds: Vec<u64>,
    /// Figures count up to here: the period's end or now, whichever is first.
    pub until_ms: u64,
}

impl Period {
    /// The days `from..=to` in `zone`, counted up to `now_ms` at the latest.
    pub fn new(from: NaiveDate, to: NaiveDate, zone: Tz, now_ms: u64) -> Period {
        let days: Vec<NaiveDate> = from.iter_days().take_while(|d| *d <= to).collect();
        let mut bounds: Vec<u64> = days
            .iter()
            .map(|d| crate::values::midnight(*d, zone).timestamp_millis().max(0) as u64)
            .collect();
        let after = to.succ_opt().unwrap_or(to);
        bounds.push(
            crate::values::midnight(after, zone)
                .timestamp_millis()
                .max(0) as u64,
        );
        let until_ms = bounds.last().copied().unwrap_or_default().min(now_ms);
        Period {
            days,
            zone,
            bounds,
            until_ms,
        }
    }

    pub fn from_ms(&self) -> u64 {
        self.bounds[0]
    }

    /// Midnight after the last day.
    pub fn end_ms(&self) -> u64 {
        self.bounds.last().copied().unwrap_or_default()
    }

    /// The day that begins at `midnight_ms`.
    pub fn day_starting(&self, midnight_ms: u64) -> Option<usize> {
        self.bounds[..self.days.len()]
            .binary_search(&midnight_ms)
            .ok()
    }

    /// The day `at_ms` falls on, if within the period.
    pub fn day_of(&self, at_ms: u64) -> Option<usize> {
        if at_ms < self.from_ms() || at_ms >= self.until_ms {
            return None;
        }
        Some(self.bounds.partition_point(|b| *b <= at_ms) - 1)
    }

    /// `[a, b)` clipped to the period and cut at midnights: (day, ms) pieces.
    fn split(&self, a: u64, b: u64) -> impl Iterator<Item = (usize, u64)> + '_ {
        let (a, b) = (a.max(self.from_ms()), b.min(self.until_ms));
        let first = self.bounds.partition_point(|x| *x <= a).saturating_sub(1);
        (first..self.days.len())
            .take_while(move |d| self.bounds[*d] < b)
            .filter_map(move |d| {
                let (lo, hi) = (a.max(self.bounds[d]), b.min(self.bounds[d + 1]));
                (hi > lo).then(|| (d, hi - lo))
            })
    }

    /// How many hours the period spans (its last day's end included).
    pub fn hours(&self) -> usize {
        let span = self.bounds.last().copied().unwrap_or_default() - self.from_ms();
        span.div_ceil(HOUR_MS) as usize
    }

    /// The hour (from the period's first midnight) `at_ms` falls in, if within the period.
    pub fn hour_of(&self, at_ms: u64) -> Option<usize> {
        self.day_of(at_ms)?;
        Some(((at_ms - self.from_ms()) / HOUR_MS) as usize)
    }

    /// When hour `h` begins.
    pub fn hour_start(&self, h: usize) -> u64 {
        self.from_ms() + h as u64 * HOUR_MS
    }

    /// `[a, b)` clipped to the period and cut at hours: (hour, ms) pieces.
    fn split_hours(&self, a: u64, b: u64) -> impl Iterator<Item = (usize, u64)> + '_ {
        let (a, b) = (a.max(self.from_ms()), b.min(self.until_ms));
        let first = (a.saturating_sub(self.from_ms()) / HOUR_MS) as usize;
        (first..self.hours())
            .take_while(move |h| self.hour_start(*h) < b)
            .filter_map(move |h| {
                let (lo, hi) = (a.max(self.hour_start(h)), b.min(self.hour_start(h + 1)));
                (hi > lo).then(|| (h, hi - lo))
            })
    }
}

const HOUR_MS: u64 = 3_600_000;

/// One hour, for the charts: the calls that entered in it (of the queues counted) and the
/// operators' time in each state (÷ one hour: how many operators were in it on average).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct HourFigures {
    pub offered: u64,
    pub answered: u64,
    pub abandoned: u64,
    pub short_abandoned: u64,
    pub answered_within_service_level: u64,
    pub ready_ms: u64,
    pub ringing_ms: u64,
    pub talk_ms: u64,
    pub outbound_talk_ms: u64,
    pub wrap_up_ms: u64,
    pub pause_ms: u64,
}

impl HourFigures {
    /// The operators' time in each state of `f`.
    pub fn add_times(&mut self, f: &OperatorFigures) {
        self.ready_ms += f.ready_ms;
        self.ringing_ms += f.ringing_ms;
        self.talk_ms += f.talk_ms;
        self.outbound_talk_ms += f.outbound_talk_ms;
        self.wrap_up_ms += f.wrap_up_ms;
        self.pause_ms += f.pause_ms;
    }

    /// The call counts of `f` (a call's figures, booked on the hour it entered).
    pub fn add_calls(&mut self, f: &QueueFigures) {
        self.offered += f.offered;
        self.answered += f.answered;
        self.abandoned += f.abandoned;
        self.short_abandoned += f.short_abandoned;
        self.answered_within_service_level += f.answered_within_service_level;
    }

    /// Service level of the hour's answered calls, percent.
    pub fn service_level(&self) -> Option<f64> {
        percent(self.answered_within_service_level, self.answered)
    }
}

/// One queue's (or several queues') calls of one day, or of the whole period.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct QueueFigures {
    pub offered: u64,
    pub answered: u64,
    pub abandoned: u64,
    /// Abandoned within the queue's short-abandon threshold (also in `abandoned`).
    pub short_abandoned: u64,
    pub overflowed: u64,
    pub timed_out: u64,
    /// Still waiting when a restart closed the call.
    pub interrupted: u64,
    pub answered_within_service_level: u64,
    /// Sum of the waits of answered calls.
    pub answered_wait_ms: u64,
    /// Sum of the waits of every call whose wait ended (answered, abandoned, overflowed,
    /// timed out), and how many they are.
    pub wait_ms: u64,
    pub waits: u64,
    pub longest_wait_ms: u64,
    /// Talk of the answered calls that ended, and how many they are.
    pub talk_ms: u64,
    pub completed: u64,
    /// Of those, the calls put on hold, and their time on hold (within `talk_ms`).
    pub held: u64,
    pub hold_ms: u64,
    /// Transfers of answered calls from one operator to another.
    pub transferred: u64,
    /// Operators who answered these calls / who were logged in.
    pub operators_answering: BTreeSet<String>,
    pub operators_logged_in: BTreeSet<String>,
}

impl QueueFigures {
    pub fn add(&mut self, o: &QueueFigures) {
        self.offered += o.offered;
        self.answered += o.answered;
        self.abandoned += o.abandoned;
        self.short_abandoned += o.short_abandoned;
        self.overflowed += o.overflowed;
        self.timed_out += o.timed_out;
        self.interrupted += o.interrupted;
        self.answered_within_service_level += o.answered_within_service_level;
        self.answered_wait_ms += o.answered_wait_ms;
        self.wait_ms += o.wait_ms;
        self.waits += o.waits;
        self.longest_wait_ms = self.longest_wait_ms.max(o.longest_wait_ms);
        self.talk_ms += o.talk_ms;
        self.completed += o.completed;
        self.held += o.held;
        self.hold_ms += o.hold_ms;
        self.transferred += o.transferred;
        self.operators_answering
            .extend(o.operators_answering.iter().cloned());
        self.operators_logged_in
            .extend(o.operators_logged_in.iter().cloned());
    }

    fn waited(&mut self, wait_ms: u64) {
        self.wait_ms += wait_ms;
        self.waits += 1;
        self.longest_wait_ms = self.longest_wait_ms.max(wait_ms);
    }

    /// Service level, answered within threshold ÷ answered (percent; none without calls).
    pub fn service_level_of_answered(&self) -> Option<f64> {
        percent(self.answered_within_service_level, self.answered)
    }

    /// Service level, answered within threshold ÷ (answered + abandoned after the
    /// short-abandon threshold).
    pub fn service_level_of_offered(&self) -> Option<f64> {
        percent(
            self.answered_within_service_level,
            (self.answered + self.abandoned).saturating_sub(self.short_abandoned),
        )
    }

    /// Abandoned after the short-abandon threshold ÷ offered less short abandons.
    pub fn abandon_rate(&self) -> Option<f64> {
        percent(
            self.abandoned.saturating_sub(self.short_abandoned),
            self.offered.saturating_sub(self.short_abandoned),
        )
    }

    /// Average speed of answer: the mean wait of answered calls.
    pub fn asa_ms(&self) -> Option<u64> {
        mean(self.answered_wait_ms, self.answered)
    }

    pub fn average_wait_ms(&self) -> Option<u64> {
        mean(self.wait_ms, self.waits)
    }

    pub fn average_talk_ms(&self) -> Option<u64> {
        mean(self.talk_ms, self.completed)
    }

    /// Mean hold of the calls put on hold.
    pub fn average_hold_ms(&self) -> Option<u64> {
        mean(self.hold_ms, self.held)
    }
}

/// One operator's day, or period.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct OperatorFigures {
    /// Logged in (login → logout, or up to the end of the period / now).
    pub in_system_ms: u64,
    /// Logged in and doing none of the below: ready for a call.
    pub ready_ms: u64,
    pub ringing_ms: u64,
    /// Queue calls answered, answer → hang-up or transfer (hold included).
    pub talk_ms: u64,
    /// Of the talk, with every call the operator talks on held.
    pub hold_ms: u64,
    /// Outbound calls connected (while logged in).
    pub outbound_talk_ms: u64,
    pub wrap_up_ms: u64,
    pub pause_ms: u64,
    pub pause_by_reason: BTreeMap<String, u64>,
    /// Queue calls taken: answered, or received by a transfer.
    pub answered: u64,
    /// Offers not taken (rang out, declined, busy).
    pub missed: u64,
    /// Outbound calls placed.
    pub made: u64,
    /// Answered calls handed on to another operator.
    pub transferred: u64,
}

impl OperatorFigures {
    pub fn add(&mut self, o: &OperatorFigures) {
        self.in_system_ms += o.in_system_ms;
        self.ready_ms += o.ready_ms;
        self.ringing_ms += o.ringing_ms;
        self.talk_ms += o.talk_ms;
        self.hold_ms += o.hold_ms;
        self.outbound_talk_ms += o.outbound_talk_ms;
        self.wrap_up_ms += o.wrap_up_ms;
        self.pause_ms += o.pause_ms;
        for (r, ms) in &o.pause_by_reason {
            *self.pause_by_reason.entry(r.clone()).or_default() += ms;
        }
        self.answered += o.answered;
        self.missed += o.missed;
        self.made += o.made;
        self.transferred += o.transferred;
    }

    /// Average handle time: (talk + wrap-up) ÷ queue calls taken (none without calls).
    pub fn aht_ms(&self) -> Option<u64> {
        mean(self.talk_ms + self.wrap_up_ms, self.answered)
    }

    /// (talk + outbound talk + wrap-up) ÷ (time in system − pause), percent.
    pub fn occupancy(&self) -> Option<f64> {
        percent(
            self.talk_ms + self.outbound_talk_ms + self.wrap_up_ms,
            self.in_system_ms.saturating_sub(self.pause_ms),
        )
    }

    fn is_empty(&self) -> bool {
        *self == OperatorFigures::default()
    }
}

fn percent(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 * 100.0 / whole as f64)
}

fn mean(sum: u64, n: u64) -> Option<u64> {
    (n > 0).then(|| (sum + n / 2) / n)
}

/// Where an operator's time goes at an instant: the first that applies.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum State {
    Talk,
    /// Talk with every call on hold.
    Hold,
    OutboundTalk,
    Ringing,
    WrapUp,
    Pause(String),
    Ready,
}

impl State {
    /// `ms` of this state on an operator's figures (time in system included).
    pub fn add_to(&self, f: &mut OperatorFigures, ms: u64) {
        f.in_system_ms += ms;
        match self {
            State::Talk => f.talk_ms += ms,
            State::Hold => {
                f.talk_ms += ms;
                f.hold_ms += ms;
            }
            State::OutboundTalk => f.outbound_talk_ms += ms,
            State::Ringing => f.ringing_ms += ms,
            State::WrapUp => f.wrap_up_ms += ms,
            State::Ready => f.ready_ms += ms,
            State::Pause(reason) => {
                f.pause_ms += ms;
                *f.pause_by_reason.entry(reason.clone()).or_default() += ms;
            }
        }
    }

    /// `ms` of this state on an hour of the charts.
    pub fn add_to_hour(&self, h: &mut HourFigures, ms: u64) {
        match self {
            State::Talk | State::Hold => h.talk_ms += ms,
            State::OutboundTalk => h.outbound_talk_ms += ms,
            State::Ringing => h.ringing_ms += ms,
            State::WrapUp => h.wrap_up_ms += ms,
            State::Ready => h.ready_ms += ms,
            State::Pause(_) => h.pause_ms += ms,
        }
    }
}

/// What an operator is doing, and since when.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OperatorTrack {
    logged_in: bool,
    pause: Option<String>,
    ringing: BTreeSet<String>,
    talking: BTreeSet<String>,
    /// Of the calls talked on, those on hold.
    #[serde(default)]
    held: BTreeSet<String>,
    outbound: BTreeSet<String>,
    wrap_up: bool,
    pub since_ms: u64,
}

impl OperatorTrack {
    /// The operator no longer talks on `call` (it ended, or they handed it on).
    fn stop_talking(&mut self, call: &str) {
        self.talking.remove(call);
        self.held.remove(call);
    }

    /// The state the operator is in; none when logged out.
    pub fn state(&self) -> Option<State> {
        if !self.logged_in {
            return None;
        }
        Some(if !self.talking.is_empty() {
            if self.talking.is_subset(&self.held) {
                State::Hold
            } else {
                State::Talk
            }
        } else if !self.outbound.is_empty() {
            State::OutboundTalk
        } else if !self.ringing.is_empty() {
            State::Ringing
        } else if self.wrap_up {
            State::WrapUp
        } else if let Some(reason) = &self.pause {
            State::Pause(reason.clone())
        } else {
            State::Ready
        })
    }
}

/// A call in a queue, as its `entered` event left it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InQueue {
    /// Where all its figures count: the instant it entered.
    pub entered_ms: u64,
    pub short_abandon_ms: u64,
    /// Answered: what remains is its end (`completed`).
    pub answered: bool,
    /// On hold since, and the hold before.
    #[serde(default)]
    pub held_since_ms: Option<u64>,
    #[serde(default)]
    pub hold_ms: u64,
    #[serde(default)]
    pub held: bool,
}

/// Where a replay's figures go: the days of a report's period ([`PeriodBook`]), or the
/// stored 15-minute and daily aggregates ([`cells::CellBook`]).
pub trait Book {
    /// Adds `figures` (given the call's short-abandon threshold) to a call that entered
    /// `queue` at `entered_ms`.
    fn call(
        &mut self,
        entered_ms: u64,
        queue: &str,
        short_abandon_ms: u64,
        figures: impl Fn(&mut QueueFigures, u64),
    );
    /// Counts on an operator at `at_ms`: answered or missed a call of `queue`, or made an
    /// outbound call (no queue).
    fn count(&mut self, at_ms: u64, operator: &str, queue: Option<&str>, count: Count);
    /// `[from_ms, to_ms)` of an operator's time in `state`.
    fn time(&mut self, operator: &str, from_ms: u64, to_ms: u64, state: &State);
}

/// What [`Book::count`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    Answered,
    Missed,
    Made,
    Transferred,
}

impl Count {
    pub fn add_to(self, f: &mut OperatorFigures) {
        match self {
            Count::Answered => f.answered += 1,
            Count::Missed => f.missed += 1,
            Count::Made => f.made += 1,
            Count::Transferred => f.transferred += 1,
        }
    }
}

/// What is going on: the calls in queues, the operators' states, whose phones ring.
/// Memory follows the calls in progress and the operators, not the number of events.
#[derive(Debug, Clone, Default)]
pub struct Ongoing {
    pub calls: HashMap<(String, String), InQueue>,
    pub tracks: BTreeMap<String, OperatorTrack>,
    /// Whose phones ring for each call (so an answer stops them without a scan).
    ringing_for: HashMap<String, BTreeSet<String>>,
    /// Operators and calls changed since [`Ongoing::take_changes`] (what to store).
    changed_operators: BTreeSet<String>,
    changed_calls: BTreeSet<(String, String)>,
}

impl Ongoing {
    /// The state as stored: operators' tracks and the calls in queues.
    pub fn restore(
        tracks: BTreeMap<String, OperatorTrack>,
        calls: HashMap<(String, String), InQueue>,
    ) -> Ongoing {
        let mut ringing_for: HashMap<String, BTreeSet<String>> = HashMap::new();
        for (operator, t) in &tracks {
            for call in &t.ringing {
                ringing_for
                    .entry(call.clone())
                    .or_default()
                    .insert(operator.clone());
            }
        }
        Ongoing {
            calls,
            tracks,
            ringing_for,
            ..Ongoing::default()
        }
    }

    /// The operators and calls changed since the last call (each once).
    pub fn take_changes(&mut self) -> (BTreeSet<String>, BTreeSet<(String, String)>) {
        (
            std::mem::take(&mut self.changed_operators),
            std::mem::take(&mut self.changed_calls),
        )
    }

    fn track(&mut self, operator: &str) -> &mut OperatorTrack {
        if !self.changed_operators.contains(operator) {
            self.changed_operators.insert(operator.to_string());
        }
        self.tracks.entry(operator.to_string()).or_default()
    }

    fn call_mut(&mut self, key: &(String, String)) -> Option<&mut InQueue> {
        let c = self.calls.get_mut(key)?;
        self.changed_calls.insert(key.clone());
        Some(c)
    }

    fn insert_call(&mut self, key: (String, String), c: InQueue) {
        self.changed_calls.insert(key.clone());
        self.calls.insert(key, c);
    }

    fn remove_call(&mut self, key: &(String, String)) -> Option<InQueue> {
        let c = self.calls.remove(key)?;
        self.changed_calls.insert(key.clone());
        Some(c)
    }
}

/// The replay: feed facts in time order; the book gets the figures.
#[derive(Debug, Clone)]
pub struct Replay<B = PeriodBook> {
    pub ongoing: Ongoing,
    pub book: B,
}

impl Replay<PeriodBook> {
    pub fn new(period: Period, queues: Option<BTreeSet<String>>) -> Replay {
        Replay::with_book(PeriodBook::new(period, queues))
    }

    /// The same replay carried on into `next` (the next day, for live figures): who is
    /// logged in, paused, ringing or talking goes on; the day's counts start again.
    pub fn roll_over(self, next: Period) -> Replay {
        Replay {
            ongoing: self.ongoing,
            book: PeriodBook::new(next, self.book.queues),
        }
    }

    /// The figures as they stand at `now_ms` (live figures: the replay goes on).
    pub fn snapshot(&self, now_ms: u64) -> Figures {
        let mut copy = self.clone();
        copy.book.period.until_ms = copy.book.period.until_ms.min(now_ms);
        copy.finish()
    }

    pub fn period(&self) -> &Period {
        &self.book.period
    }

    /// Books everyone's time up to the end of the period (or now) and hands the figures
    /// over. Operators with nothing in the period are left out.
    pub fn finish(mut self) -> Figures {
        let until = self.book.period.until_ms;
        for (operator, track) in &self.ongoing.tracks {
            if let Some(state) = track.state() {
                self.book.time(operator, track.since_ms, until, &state);
            }
        }
        self.book.finish()
    }
}

impl<B: Book> Replay<B> {
    pub fn with_book(book: B) -> Replay<B> {
        Replay {
            ongoing: Ongoing::default(),
            book,
        }
    }

    /// Changes an operator's state at `at_ms`, booking their time in the state before.
    fn change(&mut self, operator: &str, at_ms: u64, apply: impl FnOnce(&mut OperatorTrack)) {
        let track = self.ongoing.track(operator);
        let (since, state) = (track.since_ms, track.state());
        track.since_ms = at_ms.max(since);
        apply(track);
        if let Some(state) = state {
            self.book.time(operator, since, at_ms, &state);
        }
    }

    /// A terminal event of a call in a queue: its offers stop ringing everywhere.
    fn offers_end(&mut self, call: &str, at_ms: u64) {
        for o in self.ongoing.ringing_for.remove(call).unwrap_or_default() {
            self.change(&o, at_ms, |t| {
                t.ringing.remove(call);
            });
        }
    }

    /// Books `figures` on the call in `queue`; `done`: its time in the queue is over.
    fn book(
        &mut self,
        queue: &str,
        call: &str,
        done: bool,
        figures: impl Fn(&mut QueueFigures, u64),
    ) {
        let key = (queue.to_string(), call.to_string());
        let Some(c) = self.ongoing.calls.get(&key) else {
            return;
        };
        let (entered, short) = (c.entered_ms, c.short_abandon_ms);
        if done {
            self.ongoing.remove_call(&key);
        }
        self.book.call(entered, queue, short, figures);
    }

    pub fn feed(&mut self, at_ms: u64, fact: &Fact) {
        match fact {
            Fact::Queue(e) => self.queue_event(at_ms, e),
            Fact::OutboundPlaced { operator, .. } => {
                self.book.count(at_ms, operator, None, Count::Made)
            }
            Fact::OutboundConnected { operator, call } => self.change(operator, at_ms, |t| {
                t.outbound.insert(call.clone());
            }),
            Fact::OutboundEnded { operator, call } => self.change(operator, at_ms, |t| {
                t.outbound.remove(call);
            }),
            Fact::Interrupted { call } => self.interrupted(call, at_ms),
        }
    }

    fn interrupted(&mut self, call: &str, at_ms: u64) {
        self.ongoing.ringing_for.remove(call);
        let busy: Vec<String> = self
            .ongoing
            .tracks
            .iter()
            .filter(|(_, t)| {
                t.ringing.contains(call) || t.talking.contains(call) || t.outbound.contains(call)
            })
            .map(|(o, _)| o.clone())
            .collect();
        for o in busy {
            self.change(&o, at_ms, |t| {
                t.ringing.remove(call);
                t.stop_talking(call);
                t.outbound.remove(call);
            });
        }
        let open: Vec<((String, String), bool)> = self
            .ongoing
            .calls
            .iter()
            .filter(|((_, c), _)| c == call)
            .map(|(key, q)| (key.clone(), q.answered))
            .collect();
        for ((queue, _), answered) in open {
            if answered {
                // An answered call whose end was never logged: nothing more will come.
                self.ongoing.remove_call(&(queue, call.to_string()));
            } else {
                self.book(&queue, call, true, |f, _| f.interrupted += 1);
            }
        }
    }

    fn queue_event(&mut self, at_ms: u64, e: &QueueEventKind) {
        use QueueEventKind as K;
        match e {
            K::Entered {
                queue,
                call,
                short_abandon_ms,
                ..
            } => {
                self.ongoing.insert_call(
                    (queue.clone(), call.clone()),
                    InQueue {
                        entered_ms: at_ms,
                        short_abandon_ms: *short_abandon_ms,
                        answered: false,
                        held_since_ms: None,
                        hold_ms: 0,
                        held: false,
                    },
                );
                self.book(queue, call, false, |f, _| f.offered += 1);
            }
            K::Offered { call, operator, .. } => {
                self.ongoing
                    .ringing_for
                    .entry(call.clone())
                    .or_default()
                    .insert(operator.clone());
                self.change(operator, at_ms, |t| {
                    t.ringing.insert(call.clone());
                })
            }
            K::NoAnswer {
                queue,
                call,
                operator,
                ..
            } => {
                self.change(operator, at_ms, |t| {
                    t.ringing.remove(call);
                });
                if let Some(ringing) = self.ongoing.ringing_for.get_mut(call) {
                    ringing.remove(operator);
                    if ringing.is_empty() {
                        self.ongoing.ringing_for.remove(call);
                    }
                }
                self.book.count(at_ms, operator, Some(queue), Count::Missed);
            }
            K::Answered {
                queue,
                call,
                operator,
                wait_ms,
                within_service_level,
            } => {
                self.offers_end(call, at_ms);
                self.change(operator, at_ms, |t| {
                    t.talking.insert(call.clone());
                });
                if let Some(c) = self.ongoing.call_mut(&(queue.clone(), call.clone())) {
                    c.answered = true;
                }
                self.book
                    .count(at_ms, operator, Some(queue), Count::Answered);
                self.book(queue, call, false, |f, _| {
                    f.answered += 1;
                    f.answered_wait_ms += wait_ms;
                    f.waited(*wait_ms);
                    f.answered_within_service_level += u64::from(*within_service_level);
                    f.operators_answering.insert(operator.clone());
                });
            }
            K::Abandoned {
                queue,
                call,
                wait_ms,
                ..
            } => {
                self.offers_end(call, at_ms);
                self.book(queue, call, true, |f, short| {
                    f.abandoned += 1;
                    f.short_abandoned += u64::from(*wait_ms <= short);
                    f.waited(*wait_ms);
                });
            }
            K::Overflowed {
                queue,
                call,
                wait_ms,
                ..
            }
            | K::TimedOut {
                queue,
                call,
                wait_ms,
            } => {
                let overflowed = matches!(e, K::Overflowed { .. });
                self.offers_end(call, at_ms);
                self.book(queue, call, true, |f, _| {
                    if overflowed {
                        f.overflowed += 1;
                    } else {
                        f.timed_out += 1;
                    }
                    f.waited(*wait_ms);
                });
            }
            K::Completed {
                queue,
                call,
                operator,
                talk_ms,
                ..
            } => {
                self.change(operator, at_ms, |t| t.stop_talking(call));
                let key = (queue.clone(), call.clone());
                let (held, hold_ms) = match self.ongoing.calls.get(&key) {
                    Some(c) => (
                        c.held,
                        c.hold_ms + c.held_since_ms.map_or(0, |s| at_ms.saturating_sub(s)),
                    ),
                    None => (false, 0),
                };
                self.book(queue, call, true, |f, _| {
                    f.talk_ms += talk_ms;
                    f.completed += 1;
                    f.held += u64::from(held);
                    f.hold_ms += hold_ms;
                });
            }
            K::Transferred {
                queue,
                call,
                from,
                to,
                ..
            } => {
                self.change(from, at_ms, |t| t.stop_talking(call));
                self.change(to, at_ms, |t| {
                    t.talking.insert(call.clone());
                });
                self.book
                    .count(at_ms, from, Some(queue), Count::Transferred);
                self.book.count(at_ms, to, Some(queue), Count::Answered);
                self.book(queue, call, false, |f, _| {
                    f.transferred += 1;
                    f.operators_answering.insert(to.clone());
                });
            }
            K::HoldStarted {
                queue,
                call,
                operator,
            } => {
                self.change(operator, at_ms, |t| {
                    t.held.insert(call.clone());
                });
                if let Some(c) = self.ongoing.call_mut(&(queue.clone(), call.clone())) {
                    c.held = true;
                    c.held_since_ms.get_or_insert(at_ms);
                }
            }
            K::HoldEnded {
                queue,
                call,
                operator,
            } => {
                self.change(operator, at_ms, |t| {
                    t.held.remove(call);
                });
                if let Some(c) = self.ongoing.call_mut(&(queue.clone(), call.clone())) {
                    if let Some(since) = c.held_since_ms.take() {
                        c.hold_ms += at_ms.saturating_sub(since);
                    }
                }
            }
            K::Login { operator } => self.change(operator, at_ms, |t| t.logged_in = true),
            // Logging out ends whatever the operator was doing, as far as the system goes.
            K::Logout { operator } => self.change(operator, at_ms, |t| {
                *t = OperatorTrack {
                    since_ms: t.since_ms,
                    ..OperatorTrack::default()
                }
            }),
            K::Paused {
                operator, reason, ..
            } => self.change(operator, at_ms, |t| t.pause = Some(reason.clone())),
            K::Resumed { operator } => self.change(operator, at_ms, |t| t.pause = None),
            K::WrapUpStarted { operator, .. } => self.change(operator, at_ms, |t| t.wrap_up = true),
            K::WrapUpEnded { operator } => self.change(operator, at_ms, |t| t.wrap_up = false),
        }
    }
}

/// The figures of a report's period: per day and per hour, clipped to it.
#[derive(Debug, Clone)]
pub struct PeriodBook {
    period: Period,
    /// Queues whose calls count (none: all).
    queues: Option<BTreeSet<String>>,
    keep_per_queue: bool,
    /// Per day, of the queues counted.
    pub queue_days: Vec<QueueFigures>,
    /// Per queue, per day.
    pub per_queue: BTreeMap<String, Vec<QueueFigures>>,
    /// Per hour of the period, for the charts.
    pub hours: Vec<HourFigures>,
    /// Per operator, per day.
    pub operator_days: BTreeMap<String, Vec<OperatorFigures>>,
}

impl PeriodBook {
    pub fn new(period: Period, queues: Option<BTreeSet<String>>) -> PeriodBook {
        let days = period.days.len();
        PeriodBook {
            queues,
            keep_per_queue: true,
            queue_days: vec![QueueFigures::default(); days],
            per_queue: BTreeMap::new(),
            hours: vec![HourFigures::default(); period.hours()],
            operator_days: BTreeMap::new(),
            period,
        }
    }

    pub fn period(&self) -> &Period {
        &self.period
    }

    /// Without the figures per queue (the live figures' per-queue view): the reports
    /// need only those of the queues they count, and a month of many queues is costly.
    pub fn without_per_queue(mut self) -> PeriodBook {
        self.keep_per_queue = false;
        self
    }

    pub fn counts(&self, queue: &str) -> bool {
        self.queues.as_ref().is_none_or(|q| q.contains(queue))
    }

    pub fn operator_day(&mut self, operator: &str, day: usize) -> &mut OperatorFigures {
        let days = self.period.days.len();
        &mut self
            .operator_days
            .entry(operator.to_string())
            .or_insert_with(|| vec![OperatorFigures::default(); days])[day]
    }

    pub fn queue_day(&mut self, queue: &str, day: usize) -> &mut QueueFigures {
        let days = self.period.days.len();
        &mut self
            .per_queue
            .entry(queue.to_string())
            .or_insert_with(|| vec![QueueFigures::default(); days])[day]
    }

    /// Leaves out operators with nothing in the period, marks who was logged in each day
    /// and hands the figures over.
    pub fn finish(mut self) -> Figures {
        self.operator_days
            .retain(|_, days| days.iter().any(|d| !d.is_empty()));
        for (operator, days) in &self.operator_days {
            for (d, f) in days.iter().enumerate() {
                if f.in_system_ms > 0 {
                    self.queue_days[d]
                        .operators_logged_in
                        .insert(operator.clone());
                    for q in self.per_queue.values_mut() {
                        q[d].operators_logged_in.insert(operator.clone());
                    }
                }
            }
        }
        Figures {
            period: self.period,
            queue_days: self.queue_days,
            per_queue: self.per_queue,
            hours: self.hours,
            operator_days: self.operator_days,
        }
    }
}

impl Book for PeriodBook {
    fn call(
        &mut self,
        entered_ms: u64,
        queue: &str,
        short_abandon_ms: u64,
        figures: impl Fn(&mut QueueFigures, u64),
    ) {
        let Some(day) = self.period.day_of(entered_ms) else {
            return;
        };
        let counted = self.counts(queue);
        if self.keep_per_queue {
            figures(self.queue_day(queue, day), short_abandon_ms);
        }
        if counted {
            figures(&mut self.queue_days[day], short_abandon_ms);
            if let Some(h) = self.period.hour_of(entered_ms) {
                let mut delta = QueueFigures::default();
                figures(&mut delta, short_abandon_ms);
                self.hours[h].add_calls(&delta);
            }
        }
    }

    fn count(&mut self, at_ms: u64, operator: &str, queue: Option<&str>, count: Count) {
        if let (Some(d), true) = (
            self.period.day_of(at_ms),
            queue.is_none_or(|q| self.counts(q)),
        ) {
            count.add_to(self.operator_day(operator, d));
        }
    }

    fn time(&mut self, operator: &str, from_ms: u64, to_ms: u64, state: &State) {
        let hours: Vec<(usize, u64)> = self.period.split_hours(from_ms, to_ms).collect();
        for (h, ms) in hours {
            state.add_to_hour(&mut self.hours[h], ms);
        }
        let pieces: Vec<(usize, u64)> = self.period.split(from_ms, to_ms).collect();
        for (day, ms) in pieces {
            state.add_to(self.operator_day(operator, day), ms);
        }
    }
}

/// What a replay found.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    pub period: Period,
    pub queue_days: Vec<QueueFigures>,
    pub per_queue: BTreeMap<String, Vec<QueueFigures>>,
    pub hours: Vec<HourFigures>,
    pub operator_days: BTreeMap<String, Vec<OperatorFigures>>,
}

impl Figures {
    pub fn queue_total(&self) -> QueueFigures {
        let mut total = QueueFigures::default();
        for d in &self.queue_days {
            total.add(d);
        }
        total
    }

    pub fn operator_total(&self, operator: &str) -> OperatorFigures {
        let mut total = OperatorFigures::default();
        for d in self.operator_days.get(operator).into_iter().flatten() {
            total.add(d);
        }
        total
    }

    /// Every pause reason with time in the period, in name order.
    pub fn pause_reasons(&self) -> Vec<String> {
        let mut reasons = BTreeSet::new();
        for days in self.operator_days.values() {
            for d in days {
                reasons.extend(d.pause_by_reason.keys().cloned());
            }
        }
        reasons.into_iter().collect()
    }
}

/// Replays `facts` (in time order) over `period`.
pub fn replay(
    period: Period,
    queues: Option<BTreeSet<String>>,
    facts: impl IntoIterator<Item = (u64, Fact)>,
) -> Figures {
    let mut r = Replay::new(period, queues);
    for (at, fact) in facts {
        r.feed(at, &fact);
    }
    r.finish()
}

#[cfg(test)]
mod tests;
