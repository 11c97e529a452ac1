//! Change freezes: windows in which an environment takes no promotions and
//! no operations (rollbacks excepted), and the emergency override that lets
//! an admin through, with a second person's approval, for a bounded time.
//!
//! A window is one-off (two instants) or weekly recurring (days of the
//! week, a start time and a duration in a named IANA time zone). Recurring
//! windows are wall-clock windows: "Friday 18:00 for 60 hours" in
//! Europe/Berlin starts at 18:00 Berlin time and ends at 06:00 Berlin time on
//! Monday whether or not the clocks changed in between (so such a window is
//! an hour shorter or longer in real time across a DST change).

use std::fmt;

use chrono::{Datelike, Duration, LocalResult, NaiveDateTime, NaiveTime, TimeZone};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::{DomainError, Timestamp};

/// Longest weekly window: a week (a longer one would overlap itself).
pub const MAX_WEEKLY_MINUTES: u32 = 7 * 24 * 60;
/// Longest one-off window: a year.
pub const MAX_ONE_OFF_DAYS: i64 = 366;
/// Longest an approved override lasts.
pub const MAX_OVERRIDE_HOURS: u32 = 24;
/// How long an override lasts unless the request says otherwise.
pub const DEFAULT_OVERRIDE_HOURS: u32 = 4;
/// How long a requested override waits for its second person.
pub const OVERRIDE_APPROVAL_HOURS: i64 = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Day {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Day {
    fn of(w: chrono::Weekday) -> Day {
        match w {
            chrono::Weekday::Mon => Day::Mon,
            chrono::Weekday::Tue => Day::Tue,
            chrono::Weekday::Wed => Day::Wed,
            chrono::Weekday::Thu => Day::Thu,
            chrono::Weekday::Fri => Day::Fri,
            chrono::Weekday::Sat => Day::Sat,
            chrono::Weekday::Sun => Day::Sun,
        }
    }
}

/// When a window is in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Schedule {
    /// From `from` (inclusive) to `to` (exclusive).
    OneOff { from: Timestamp, to: Timestamp },
    /// Each of `days` at `start` ("HH:MM", local time in `time_zone`) for
    /// `duration_minutes` of wall-clock time.
    Weekly {
        days: Vec<Day>,
        start: String,
        duration_minutes: u32,
        time_zone: String,
    },
}

/// A stored freeze window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreezeWindow {
    pub id: i64,
    pub name: String,
    pub environment: String,
    pub schedule: Schedule,
    pub created_by: String,
    pub created_at: Timestamp,
}

/// A window as an admin asks for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewFreeze {
    pub name: String,
    pub environment: String,
    pub schedule: Schedule,
}

impl NewFreeze {
    pub fn validate(&self) -> Result<(), DomainError> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(DomainError::Invalid(
                "a freeze window needs a name of 1 to 100 characters".into(),
            ));
        }
        crate::text::check_free_text("name", name)?;
        crate::policy::parse_environment_name(&self.environment)?;
        self.schedule.validate()
    }
}

fn parse_start(s: &str) -> Result<NaiveTime, DomainError> {
    let bad = || {
        DomainError::Invalid(format!(
            "start {s:?} is not a time of day: write HH:MM, e.g. 18:00"
        ))
    };
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: u32 = h.parse().map_err(|_| bad())?;
    let m: u32 = m.parse().map_err(|_| bad())?;
    NaiveTime::from_hms_opt(h, m, 0).ok_or_else(bad)
}

/// An IANA time zone by name (`Europe/Berlin`).
pub fn parse_time_zone(s: &str) -> Result<Tz, DomainError> {
    s.parse::<Tz>().map_err(|_| {
        DomainError::Invalid(format!(
            "time_zone {s:?} is not an IANA time zone name such as Europe/Berlin or UTC"
        ))
    })
}

/// The instant of local time `n` in `tz`: the earlier of two when the clocks
/// go back; when they go forward past `n`, the end of the gap (a window
/// starting at 02:30 on a night that jumps from 02:00 to 03:00 starts at 03:00).
fn instant(tz: Tz, n: NaiveDateTime) -> Option<Timestamp> {
    let at = |n: NaiveDateTime| match tz.from_local_datetime(&n) {
        LocalResult::Single(d) => Some(d),
        LocalResult::Ambiguous(a, _) => Some(a),
        LocalResult::None => None,
    };
    // Gaps are whole minutes, at most a few hours long.
    let d = (0..=4 * 60).find_map(|m| at(n + Duration::minutes(m)))?;
    Some(Timestamp::from_micros(d.timestamp_micros()))
}

impl Schedule {
    pub fn validate(&self) -> Result<(), DomainError> {
        match self {
            Schedule::OneOff { from, to } => {
                if to <= from {
                    return Err(DomainError::Invalid(format!(
                        "a one-off freeze must end after it starts: from {from} to {to}"
                    )));
                }
                if *to > from.plus_days(MAX_ONE_OFF_DAYS) {
                    return Err(DomainError::Invalid(format!(
                        "a one-off freeze lasts at most {MAX_ONE_OFF_DAYS} days"
                    )));
                }
                Ok(())
            }
            Schedule::Weekly {
                days,
                start,
                duration_minutes,
                time_zone,
            } => {
                if days.is_empty() {
                    return Err(DomainError::Invalid(
                        "a weekly freeze needs at least one day (mon … sun)".into(),
                    ));
                }
                parse_start(start)?;
                parse_time_zone(time_zone)?;
                if !(1..=MAX_WEEKLY_MINUTES).contains(duration_minutes) {
                    return Err(DomainError::Invalid(format!(
                        "duration_minutes must be between 1 and {MAX_WEEKLY_MINUTES}, not {duration_minutes}"
                    )));
                }
                Ok(())
            }
        }
    }

    /// If the window is in force at `t`: when this occurrence ends (the
    /// latest end if occurrences overlap). `None` for an invalid schedule.
    pub fn active_at(&self, t: Timestamp) -> Option<Timestamp> {
        match self {
            Schedule::OneOff { from, to } => (*from <= t && t < *to).then_some(*to),
            Schedule::Weekly {
                days,
                start,
                duration_minutes,
                time_zone,
            } => {
                let tz = parse_time_zone(time_zone).ok()?;
                let start = parse_start(start).ok()?;
                let local = t.to_datetime().with_timezone(&tz).naive_local().date();
                let length = Duration::minutes(i64::from(*duration_minutes));
                // Occurrences starting up to 8 days back can still be running.
                (0..=8_i64)
                    .filter_map(|back| {
                        let day = local.checked_sub_signed(Duration::days(back))?;
                        if !days.contains(&Day::of(day.weekday())) {
                            return None;
                        }
                        let begin_local = day.and_time(start);
                        let begin = instant(tz, begin_local)?;
                        let end = instant(tz, begin_local + length)?;
                        (begin <= t && t < end).then_some(end)
                    })
                    .max()
            }
        }
    }
}

/// A freeze in force in an environment now, and the approved override that
/// lets changes through anyway, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreezeState {
    pub environment: String,
    pub window: FreezeWindow,
    pub ends_at: Timestamp,
    pub overridden_by: Option<FreezeOverride>,
}

/// The window of `env` in force at `t` that ends last, with that end.
pub fn active_freeze<'a>(
    windows: &'a [FreezeWindow],
    env: &str,
    t: Timestamp,
) -> Option<(&'a FreezeWindow, Timestamp)> {
    windows
        .iter()
        .filter(|w| w.environment == env)
        .filter_map(|w| w.schedule.active_at(t).map(|end| (w, end)))
        .max_by_key(|(_, end)| *end)
}

/// The refusal of `what` inside the window `w`, which ends at `end`.
pub fn frozen_error(what: &str, w: &FreezeWindow, end: Timestamp) -> DomainError {
    DomainError::Frozen(format!(
        "{what} refused: environment {} is frozen by \"{}\" until {}; \
         an admin can request an emergency override (POST /api/v1/environments/{}/overrides)",
        w.environment,
        w.name,
        end.to_rfc3339(),
        w.environment
    ))
}

/// An emergency override of the freezes of one environment: requested by
/// an admin with a reason, in force once a second person approved it, for
/// `hours` from that approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreezeOverride {
    pub id: i64,
    pub environment: String,
    pub reason: String,
    pub hours: u32,
    pub requested_by: String,
    pub requested_at: Timestamp,
    pub approved_by: Option<String>,
    pub approved_at: Option<Timestamp>,
    pub valid_until: Option<Timestamp>,
}

impl FreezeOverride {
    /// Whether it lets changes through at `t`.
    pub fn in_force_at(&self, t: Timestamp) -> bool {
        match (self.approved_at, self.valid_until) {
            (Some(from), Some(until)) => from <= t && t < until,
            _ => false,
        }
    }

    pub fn status(&self, t: Timestamp) -> OverrideStatus {
        match self.valid_until {
            Some(_) if self.in_force_at(t) => OverrideStatus::InForce,
            Some(_) => OverrideStatus::Ended,
            None if t >= self.requested_at.plus_hours(OVERRIDE_APPROVAL_HOURS) => {
                OverrideStatus::Lapsed
            }
            None => OverrideStatus::Pending,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverrideStatus {
    /// Waiting for the second person.
    Pending,
    /// Not approved within `OVERRIDE_APPROVAL_HOURS`.
    Lapsed,
    InForce,
    Ended,
}

impl fmt::Display for OverrideStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OverrideStatus::Pending => "pending",
            OverrideStatus::Lapsed => "lapsed",
            OverrideStatus::InForce => "in force",
            OverrideStatus::Ended => "ended",
        })
    }
}

/// Checks an override request: a reason, and 1 to `MAX_OVERRIDE_HOURS` hours.
pub fn check_override_request(reason: &str, hours: u32) -> Result<(), DomainError> {
    if reason.trim().is_empty() {
        return Err(DomainError::Invalid(
            "an emergency override needs a reason: say in `reason` why the change cannot wait for the freeze to end".into(),
        ));
    }
    crate::text::check_free_text("reason", reason)?;
    if !(1..=MAX_OVERRIDE_HOURS).contains(&hours) {
        return Err(DomainError::Invalid(format!(
            "an override lasts 1 to {MAX_OVERRIDE_HOURS} hours, not {hours}"
        )));
    }
    Ok(())
}

/// Checks that `approver` may approve `o` at `now`: a second person, while
/// the request is pending.
pub fn check_override_approval(
    o: &FreezeOverride,
    approver: &str,
    now: Timestamp,
) -> Result<(), DomainError> {
    match o.status(now) {
        OverrideStatus::Pending => {}
        OverrideStatus::Lapsed => return Err(DomainError::Conflict(format!(
            "override {} was not approved within {OVERRIDE_APPROVAL_HOURS} hours; request it again",
            o.id
        ))),
        OverrideStatus::InForce | OverrideStatus::Ended => {
            return Err(DomainError::Conflict(format!(
                "override {} was already approved by {}",
                o.id,
                o.approved_by.as_deref().unwrap_or("someone")
            )))
        }
    }
    if o.requested_by == approver {
        return Err(DomainError::Forbidden(format!(
            "{approver} requested override {} and cannot approve it; a second person must",
            o.id
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(s).expect("timestamp")
    }

    fn weekly(days: &[Day], start: &str, minutes: u32, tz: &str) -> Schedule {
        Schedule::Weekly {
            days: days.to_vec(),
            start: start.into(),
            duration_minutes: minutes,
            time_zone: tz.into(),
        }
    }

    fn window(name: &str, env: &str, schedule: Schedule) -> FreezeWindow {
        FreezeWindow {
            id: 1,
            name: name.into(),
            environment: env.into(),
            schedule,
            created_by: "alice".into(),
            created_at: ts("2026-01-01T00:00:00Z"),
        }
    }

    #[test]
    fn a_one_off_window_is_in_force_from_its_start_until_its_end() {
        let s = Schedule::OneOff {
            from: ts("2026-12-24T00:00:00Z"),
            to: ts("2026-12-27T00:00:00Z"),
        };
        assert_eq!(s.validate(), Ok(()));
        assert_eq!(s.active_at(ts("2026-12-23T23:59:59Z")), None);
        assert_eq!(
            s.active_at(ts("2026-12-24T00:00:00Z")),
            Some(ts("2026-12-27T00:00:00Z"))
        );
        assert_eq!(s.active_at(ts("2026-12-27T00:00:00Z")), None);
    }

    #[test]
    fn a_daily_window_follows_local_time_across_the_spring_dst_change() {
        // Weekdays 09:00-17:00 Berlin: 08:00-16:00Z in winter (CET), 07:00-15:00Z in summer (CEST).
        let s = weekly(
            &[Day::Mon, Day::Tue, Day::Wed, Day::Thu, Day::Fri],
            "09:00",
            8 * 60,
            "Europe/Berlin",
        );
        // Friday 27 March 2026, before the change on Sunday 29 March.
        assert_eq!(s.active_at(ts("2026-03-27T07:30:00Z")), None);
        assert_eq!(
            s.active_at(ts("2026-03-27T08:00:00Z")),
            Some(ts("2026-03-27T16:00:00Z"))
        );
        // Monday 30 March, after it.
        assert_eq!(
            s.active_at(ts("2026-03-30T07:00:00Z")),
            Some(ts("2026-03-30T15:00:00Z"))
        );
        assert_eq!(s.active_at(ts("2026-03-30T15:30:00Z")), None);
        // Saturday: no window.
        assert_eq!(s.active_at(ts("2026-03-28T10:00:00Z")), None);
    }

    #[test]
    fn a_night_window_spanning_the_spring_change_is_an_hour_shorter_in_real_time() {
        // Saturday 22:00 for 8 hours of wall clock: to Sunday 06:00 Berlin.
        // On 28/29 March 2026 the clocks jump 02:00 -> 03:00, so it is
        // 21:00Z to 04:00Z: 7 real hours.
        let s = weekly(&[Day::Sat], "22:00", 8 * 60, "Europe/Berlin");
        assert_eq!(
            s.active_at(ts("2026-03-28T21:00:00Z")),
            Some(ts("2026-03-29T04:00:00Z"))
        );
        assert_eq!(s.active_at(ts("2026-03-28T20:59:59Z")), None);
        assert!(s.active_at(ts("2026-03-29T03:59:00Z")).is_some());
        assert_eq!(s.active_at(ts("2026-03-29T04:00:00Z")), None);
    }

    #[test]
    fn a_night_window_spanning_the_autumn_change_is_an_hour_longer_in_real_time() {
        // 24/25 October 2026: the clocks go back 03:00 -> 02:00 on Sunday.
        // Saturday 22:00 CEST = 20:00Z; Sunday 06:00 CET = 05:00Z: 9 real hours.
        let s = weekly(&[Day::Sat], "22:00", 8 * 60, "Europe/Berlin");
        assert_eq!(s.active_at(ts("2026-10-24T19:59:00Z")), None);
        assert_eq!(
            s.active_at(ts("2026-10-24T20:00:00Z")),
            Some(ts("2026-10-25T05:00:00Z"))
        );
        assert!(s.active_at(ts("2026-10-25T04:30:00Z")).is_some());
        assert_eq!(s.active_at(ts("2026-10-25T05:00:00Z")), None);
    }

    #[test]
    fn a_window_starting_inside_the_spring_gap_starts_when_the_clock_gets_there() {
        // Sunday 02:30 does not exist in Berlin on 29 March 2026 (02:00
        // CET is followed by 03:00 CEST, 01:00Z); the window 02:30-03:30
        // wall clock is in force from 03:00 to 03:30 CEST.
        let s = weekly(&[Day::Sun], "02:30", 60, "Europe/Berlin");
        assert_eq!(s.active_at(ts("2026-03-29T00:59:00Z")), None);
        assert_eq!(
            s.active_at(ts("2026-03-29T01:00:00Z")),
            Some(ts("2026-03-29T01:30:00Z"))
        );
        assert_eq!(s.active_at(ts("2026-03-29T01:30:00Z")), None);
        // A week later it is an ordinary hour: 00:30-01:30Z.
        assert_eq!(
            s.active_at(ts("2026-04-05T00:30:00Z")),
            Some(ts("2026-04-05T01:30:00Z"))
        );
    }

    #[test]
    fn a_weekend_window_crossing_midnight_and_the_week_end_is_found_from_any_day() {
        // Friday 18:00 for 60 hours: until Monday 06:00 (New York).
        let s = weekly(&[Day::Fri], "18:00", 60 * 60, "America/New_York");
        // Sunday noon New York (EDT, UTC-4) in June 2026.
        assert_eq!(
            s.active_at(ts("2026-06-14T16:00:00Z")),
            Some(ts("2026-06-15T10:00:00Z"))
        );
        assert_eq!(s.active_at(ts("2026-06-15T10:00:00Z")), None);
    }

    #[test]
    fn the_window_in_force_is_the_environments_and_ends_last() {
        let ws = vec![
            window(
                "short",
                "production",
                Schedule::OneOff {
                    from: ts("2026-12-24T00:00:00Z"),
                    to: ts("2026-12-25T00:00:00Z"),
                },
            ),
            window(
                "long",
                "production",
                Schedule::OneOff {
                    from: ts("2026-12-20T00:00:00Z"),
                    to: ts("2027-01-02T00:00:00Z"),
                },
            ),
            window(
                "staging only",
                "staging",
                Schedule::OneOff {
                    from: ts("2026-01-01T00:00:00Z"),
                    to: ts("2027-12-31T00:00:00Z"),
                },
            ),
        ];
        let (w, end) =
            active_freeze(&ws, "production", ts("2026-12-24T12:00:00Z")).expect("frozen");
        assert_eq!((w.name.as_str(), end), ("long", ts("2027-01-02T00:00:00Z")));
        assert!(active_freeze(&ws, "development", ts("2026-12-24T12:00:00Z")).is_none());
        let msg = frozen_error("promoting chat:v2", w, end).to_string();
        assert!(
            msg.contains("frozen by \"long\" until 2027-01-02T00:00:00"),
            "{msg}"
        );
    }

    #[test]
    fn bad_windows_are_refused_with_what_is_wrong() {
        let bad = [
            (weekly(&[], "18:00", 60, "UTC"), "at least one day"),
            (weekly(&[Day::Fri], "25:00", 60, "UTC"), "HH:MM"),
            (weekly(&[Day::Fri], "6pm", 60, "UTC"), "HH:MM"),
            (weekly(&[Day::Fri], "18:00", 0, "UTC"), "duration_minutes"),
            (
                weekly(&[Day::Fri], "18:00", MAX_WEEKLY_MINUTES + 1, "UTC"),
                "duration_minutes",
            ),
            (weekly(&[Day::Fri], "18:00", 60, "Mars/Olympus"), "IANA"),
            (
                Schedule::OneOff {
                    from: ts("2026-12-27T00:00:00Z"),
                    to: ts("2026-12-24T00:00:00Z"),
                },
                "end after it starts",
            ),
        ];
        for (s, why) in bad {
            match s.validate() {
                Err(DomainError::Invalid(m)) => assert!(m.contains(why), "{m} / {why}"),
                other => panic!("{s:?}: {other:?}"),
            }
        }
        let nameless = NewFreeze {
            name: " ".into(),
            environment: "production".into(),
            schedule: weekly(&[Day::Fri], "18:00", 60, "UTC"),
        };
        assert!(nameless.validate().is_err());
    }

    #[test]
    fn a_schedule_reads_from_json_and_refuses_unknown_fields() {
        let s: Schedule = serde_json::from_value(serde_json::json!({
            "kind": "weekly", "days": ["fri"], "start": "18:00",
            "duration_minutes": 3600, "time_zone": "Europe/Berlin"
        }))
        .expect("weekly");
        assert_eq!(s, weekly(&[Day::Fri], "18:00", 3600, "Europe/Berlin"));
        assert!(serde_json::from_value::<Schedule>(serde_json::json!({
            "kind": "weekly", "days": ["fri"], "start": "18:00",
            "duration_minutes": 60, "time_zone": "UTC", "extra": 1
        }))
        .is_err());
    }

    fn override_request() -> FreezeOverride {
        FreezeOverride {
            id: 7,
            environment: "production".into(),
            reason: "hotfix for CVE".into(),
            hours: 2,
            requested_by: "alice".into(),
            requested_at: ts("2026-12-24T10:00:00Z"),
            approved_by: None,
            approved_at: None,
            valid_until: None,
        }
    }

    #[test]
    fn an_override_needs_a_reason_a_second_person_and_lasts_a_bounded_time() {
        assert!(check_override_request(" ", 2).is_err());
        assert!(check_override_request("hotfix", 0).is_err());
        assert!(check_override_request("hotfix", MAX_OVERRIDE_HOURS + 1).is_err());
        assert_eq!(check_override_request("hotfix", 2), Ok(()));
        let mut o = override_request();
        let now = ts("2026-12-24T10:05:00Z");
        assert!(!o.in_force_at(now), "not before it is approved");
        assert!(matches!(
            check_override_approval(&o, "alice", now),
            Err(DomainError::Forbidden(_))
        ));
        assert_eq!(check_override_approval(&o, "bob", now), Ok(()));
        o.approved_by = Some("bob".into());
        o.approved_at = Some(now);
        o.valid_until = Some(now.plus_hours(2));
        assert!(o.in_force_at(now));
        assert_eq!(o.status(now), OverrideStatus::InForce);
        assert!(!o.in_force_at(now.plus_hours(2)));
        assert_eq!(o.status(now.plus_hours(2)), OverrideStatus::Ended);
        assert!(matches!(
            check_override_approval(&o, "carol", now),
            Err(DomainError::Conflict(_))
        ));
    }

    #[test]
    fn an_override_not_approved_in_time_lapses() {
        let o = override_request();
        let late = o.requested_at.plus_hours(OVERRIDE_APPROVAL_HOURS);
        assert_eq!(o.status(late), OverrideStatus::Lapsed);
        assert!(matches!(
            check_override_approval(&o, "bob", late),
            Err(DomainError::Conflict(m)) if m.contains("request it again")
        ));
    }
}
