//! The contact-center figures (Call-Center and KPI), computed by replaying the event log
//! over a period. Pure: facts in, figures out; [`super::contact_store`] reads the facts.
//! Every figure is defined in `README.md` beside this file.

use chrono::NaiveDate;
use chrono_tz::Tz;
use kolokol_engine::queue::QueueEventKind;
use std::collections::{BTreeMap, BTreeSet, HashMap};

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
#[derive(Debug, Clone)]
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
    /// Operators who answered these calls / who were logged in.
    pub operators_answering: BTreeSet<String>,
    pub operators_logged_in: BTreeSet<String>,
}

impl QueueFigures {
    fn add(&mut self, o: &QueueFigures) {
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
}

/// One operator's day, or period.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct OperatorFigures {
    /// Logged in (login → logout, or up to the end of the period / now).
    pub in_system_ms: u64,
    /// Logged in and doing none of the below: ready for a call.
    pub ready_ms: u64,
    pub ringing_ms: u64,
    /// Queue calls answered, answer → hang-up (hold included).
    pub talk_ms: u64,
    /// Outbound calls connected (while logged in).
    pub outbound_talk_ms: u64,
    pub wrap_up_ms: u64,
    pub pause_ms: u64,
    pub pause_by_reason: BTreeMap<String, u64>,
    pub answered: u64,
    /// Offers not taken (rang out, declined, busy).
    pub missed: u64,
    /// Outbound calls placed.
    pub made: u64,
}

impl OperatorFigures {
    pub fn add(&mut self, o: &OperatorFigures) {
        self.in_system_ms += o.in_system_ms;
        self.ready_ms += o.ready_ms;
        self.ringing_ms += o.ringing_ms;
        self.talk_ms += o.talk_ms;
        self.outbound_talk_ms += o.outbound_talk_ms;
        self.wrap_up_ms += o.wrap_up_ms;
        self.pause_ms += o.pause_ms;
        for (r, ms) in &o.pause_by_reason {
            *self.pause_by_reason.entry(r.clone()).or_default() += ms;
        }
        self.answered += o.answered;
        self.missed += o.missed;
        self.made += o.made;
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
#[derive(Debug, Clone, PartialEq)]
enum Bucket {
    Talk,
    OutboundTalk,
    Ringing,
    WrapUp,
    Pause(String),
    Ready,
}

#[derive(Debug, Default, Clone)]
struct OperatorTrack {
    logged_in: bool,
    pause: Option<String>,
    ringing: BTreeSet<String>,
    talking: BTreeSet<String>,
    outbound: BTreeSet<String>,
    wrap_up: bool,
    since_ms: u64,
}

impl OperatorTrack {
    fn bucket(&self) -> Option<Bucket> {
        if !self.logged_in {
            return None;
        }
        Some(if !self.talking.is_empty() {
            Bucket::Talk
        } else if !self.outbound.is_empty() {
            Bucket::OutboundTalk
        } else if !self.ringing.is_empty() {
            Bucket::Ringing
        } else if self.wrap_up {
            Bucket::WrapUp
        } else if let Some(reason) = &self.pause {
            Bucket::Pause(reason.clone())
        } else {
            Bucket::Ready
        })
    }
}

/// A call in a queue, as its `entered` event left it.
#[derive(Debug, Clone)]
struct InQueue {
    /// The day it entered, if within the period (where all its figures count).
    day: Option<usize>,
    hour: Option<usize>,
    counted: bool,
    short_abandon_ms: u64,
    /// Answered: what remains is its end (`completed`).
    answered: bool,
}

/// The replay: feed facts in time order, then read the figures.
#[derive(Debug, Clone)]
pub struct Replay {
    period: Period,
    /// Queues whose calls count (none: all).
    queues: Option<BTreeSet<String>>,
    calls: HashMap<(String, String), InQueue>,
    tracks: BTreeMap<String, OperatorTrack>,
    /// Whose phones ring for each call (so an answer stops them without a scan).
    ringing_for: HashMap<String, BTreeSet<String>>,
    /// Per day, of the queues counted.
    pub queue_days: Vec<QueueFigures>,
    /// Per queue, per day.
    pub per_queue: BTreeMap<String, Vec<QueueFigures>>,
    /// Per hour of the period, for the charts.
    pub hours: Vec<HourFigures>,
    /// Per operator, per day.
    pub operator_days: BTreeMap<String, Vec<OperatorFigures>>,
}

impl Replay {
    pub fn new(period: Period, queues: Option<BTreeSet<String>>) -> Replay {
        let days = period.days.len();
        Replay {
            queues,
            calls: HashMap::new(),
            tracks: BTreeMap::new(),
            ringing_for: HashMap::new(),
            queue_days: vec![QueueFigures::default(); days],
            per_queue: BTreeMap::new(),
            hours: vec![HourFigures::default(); period.hours()],
            operator_days: BTreeMap::new(),
            period,
        }
    }

    fn counts(&self, queue: &str) -> bool {
        self.queues.as_ref().is_none_or(|q| q.contains(queue))
    }

    fn operator_day(&mut self, operator: &str, day: usize) -> &mut OperatorFigures {
        let days = self.period.days.len();
        &mut self
            .operator_days
            .entry(operator.to_string())
            .or_insert_with(|| vec![OperatorFigures::default(); days])[day]
    }

    /// Books the operator's time since their last change to its bucket, up to `at_ms`.
    /// The same replay carried on into `next` (the next day, for live figures): who is
    /// logged in, paused, ringing or talking goes on; the day's counts start again.
    pub fn roll_over(self, next: Period) -> Replay {
        let mut r = Replay::new(next, self.queues);
        r.tracks = self.tracks;
        r.ringing_for = self.ringing_for;
        r
    }

    fn account(&mut self, operator: &str, at_ms: u64) {
        let track = self.tracks.entry(operator.to_string()).or_default();
        let (since, bucket) = (track.since_ms, track.bucket());
        track.since_ms = at_ms.max(since);
        let Some(bucket) = bucket else {
            return;
        };
        let hours: Vec<(usize, u64)> = self.period.split_hours(since, at_ms).collect();
        for (h, ms) in hours {
            let f = &mut self.hours[h];
            match &bucket {
                Bucket::Talk => f.talk_ms += ms,
                Bucket::OutboundTalk => f.outbound_talk_ms += ms,
                Bucket::Ringing => f.ringing_ms += ms,
                Bucket::WrapUp => f.wrap_up_ms += ms,
                Bucket::Ready => f.ready_ms += ms,
                Bucket::Pause(_) => f.pause_ms += ms,
            }
        }
        let pieces: Vec<(usize, u64)> = self.period.split(since, at_ms).collect();
        for (day, ms) in pieces {
            let f = self.operator_day(operator, day);
            f.in_system_ms += ms;
            match &bucket {
                Bucket::Talk => f.talk_ms += ms,
                Bucket::OutboundTalk => f.outbound_talk_ms += ms,
                Bucket::Ringing => f.ringing_ms += ms,
                Bucket::WrapUp => f.wrap_up_ms += ms,
                Bucket::Ready => f.ready_ms += ms,
                Bucket::Pause(reason) => {
                    f.pause_ms += ms;
                    *f.pause_by_reason.entry(reason.clone()).or_default() += ms;
                }
            }
        }
    }

    /// Changes an operator's state at `at_ms`, booking the time before it.
    fn change(&mut self, operator: &str, at_ms: u64, apply: impl FnOnce(&mut OperatorTrack)) {
        self.account(operator, at_ms);
        apply(self.tracks.entry(operator.to_string()).or_default());
    }

    /// A terminal event of a call in a queue: its offers stop ringing everywhere.
    fn offers_end(&mut self, call: &str, at_ms: u64) {
        for o in self.ringing_for.remove(call).unwrap_or_default() {
            self.change(&o, at_ms, |t| {
                t.ringing.remove(call);
            });
        }
    }

    /// Books `book` on the figures of the day `call` entered `queue` (its queue's, and the
    /// report's when the queue counts); `done`: the call's time in the queue is over.
    fn book(
        &mut self,
        queue: &str,
        call: &str,
        done: bool,
        book: impl Fn(&mut QueueFigures, u64),
        hour: impl Fn(&mut HourFigures, u64),
    ) {
        let key = (queue.to_string(), call.to_string());
        let Some(c) = self.calls.get(&key) else {
            return;
        };
        let (day, counted, short) = (c.day, c.counted, c.short_abandon_ms);
        if let (Some(h), true) = (c.hour, counted) {
            hour(&mut self.hours[h], short);
        }
        if done {
            self.calls.remove(&key);
        }
        let Some(day) = day else {
            return;
        };
        let days = self.period.days.len();
        book(
            &mut self
                .per_queue
                .entry(queue.to_string())
                .or_insert_with(|| vec![QueueFigures::default(); days])[day],
            short,
        );
        if counted {
            book(&mut self.queue_days[day], short);
        }
    }

    pub fn feed(&mut self, at_ms: u64, fact: &Fact) {
        let day = self.period.day_of(at_ms);
        match fact {
            Fact::Queue(e) => self.queue_event(at_ms, day, e),
            Fact::OutboundPlaced { operator, .. } => {
                if let Some(d) = day {
                    self.operator_day(operator, d).made += 1;
                }
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
        self.ringing_for.remove(call);
        let busy: Vec<String> = self
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
                t.talking.remove(call);
                t.outbound.remove(call);
            });
        }
        let waiting: Vec<String> = self
            .calls
            .iter()
            .filter(|((_, c), q)| c == call && !q.answered)
            .map(|((queue, _), _)| queue.clone())
            .collect();
        for queue in waiting {
            self.book(&queue, call, true, |f, _| f.interrupted += 1, |_, _| {});
        }
        // An answered call whose end was never logged: nothing more will come.
        self.calls.retain(|(_, c), _| c != call);
    }

    fn queue_event(&mut self, at_ms: u64, day: Option<usize>, e: &QueueEventKind) {
        use QueueEventKind as K;
        match e {
            K::Entered {
                queue,
                call,
                short_abandon_ms,
                ..
            } => {
                let counted = self.counts(queue);
                self.calls.insert(
                    (queue.clone(), call.clone()),
                    InQueue {
                        day,
                        hour: self.period.hour_of(at_ms),
                        counted,
                        short_abandon_ms: *short_abandon_ms,
                        answered: false,
                    },
                );
                self.book(
                    queue,
                    call,
                    false,
                    |f, _| f.offered += 1,
                    |h, _| h.offered += 1,
                );
            }
            K::Offered { call, operator, .. } => {
                self.ringing_for
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
                if let Some(ringing) = self.ringing_for.get_mut(call) {
                    ringing.remove(operator);
                    if ringing.is_empty() {
                        self.ringing_for.remove(call);
                    }
                }
                if let (Some(d), true) = (day, self.counts(queue)) {
                    self.operator_day(operator, d).missed += 1;
                }
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
                if let Some(c) = self.calls.get_mut(&(queue.clone(), call.clone())) {
                    c.answered = true;
                }
                if let (Some(d), true) = (day, self.counts(queue)) {
                    self.operator_day(operator, d).answered += 1;
                }
                self.book(
                    queue,
                    call,
                    false,
                    |f, _| {
                        f.answered += 1;
                        f.answered_wait_ms += wait_ms;
                        f.waited(*wait_ms);
                        f.answered_within_service_level += u64::from(*within_service_level);
                        f.operators_answering.insert(operator.clone());
                    },
                    |h, _| {
                        h.answered += 1;
                        h.answered_within_service_level += u64::from(*within_service_level);
                    },
                );
            }
            K::Abandoned {
                queue,
                call,
                wait_ms,
                ..
            } => {
                self.offers_end(call, at_ms);
                self.book(
                    queue,
                    call,
                    true,
                    |f, short| {
                        f.abandoned += 1;
                        f.short_abandoned += u64::from(*wait_ms <= short);
                        f.waited(*wait_ms);
                    },
                    |h, short| {
                        h.abandoned += 1;
                        h.short_abandoned += u64::from(*wait_ms <= short);
                    },
                );
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
                self.book(
                    queue,
                    call,
                    true,
                    |f, _| {
                        if overflowed {
                            f.overflowed += 1;
                        } else {
                            f.timed_out += 1;
                        }
                        f.waited(*wait_ms);
                    },
                    |_, _| {},
                );
            }
            K::Completed {
                queue,
                call,
                operator,
                talk_ms,
                ..
            } => {
                self.change(operator, at_ms, |t| {
                    t.talking.remove(call);
                });
                self.book(
                    queue,
                    call,
                    true,
                    |f, _| {
                        f.talk_ms += talk_ms;
                        f.completed += 1;
                    },
                    |_, _| {},
                );
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

    /// The figures as they stand at `now_ms` (live figures: the replay goes on).
    pub fn snapshot(&self, now_ms: u64) -> Figures {
        let mut copy = self.clone();
        copy.period.until_ms = copy.period.until_ms.min(now_ms);
        copy.finish()
    }

    pub fn period(&self) -> &Period {
        &self.period
    }

    /// Books everyone's time up to the end of the period (or now) and hands the figures
    /// over. Operators with nothing in the period are left out.
    pub fn finish(mut self) -> Figures {
        let until = self.period.until_ms;
        let operators: Vec<String> = self.tracks.keys().cloned().collect();
        for o in &operators {
            self.account(o, until);
        }
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

/// What a replay found.
#[derive(Debug, Clone)]
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
