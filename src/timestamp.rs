//! Times as plain values: a [`SystemTime`] as Unix seconds and nanoseconds, as a calendar time
//! ([`OffsetDateTime`]), as RFC 3339 text and as an MS-DOS date and time (ZIP entries).
//!
//! A file's modification time or a tar header can hold any time at all, far beyond what a
//! calendar type holds (years -9999 to 9999) or what `SystemTime + Duration` survives. Every
//! conversion here is total or fallible, never a panic: [`utc`] fails with [`OutOfRange`],
//! [`from_unix`] and [`rfc3339`] say `None`, [`unix`] and [`dos`] clamp.

use std::time::{Duration, SystemTime};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A time outside the calendar this program can represent (the years -9999 to 9999).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the time {seconds} seconds from 1970-01-01 UTC lies outside the years -9999 to 9999: \
     set a real date on the file (`touch`) or rebuild the archive"
)]
pub struct OutOfRange {
    /// The time, in seconds from the Unix epoch.
    pub seconds: i64,
}

/// `t` as whole seconds from the Unix epoch (rounded down, so negative before 1970) and the
/// nanoseconds past that second: the pair a `timespec` holds. Exact for every time a Unix
/// system can hold; a time beyond `i64` seconds (none on Unix) saturates.
pub fn unix(t: SystemTime) -> (i64, u32) {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => (
            i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
            after.subsec_nanos(),
        ),
        Err(before) => {
            let before = before.duration();
            let (seconds, nanos) = match before.subsec_nanos() {
                0 => (before.as_secs(), 0),
                n => (before.as_secs().saturating_add(1), 1_000_000_000 - n),
            };
            match 0i64.checked_sub_unsigned(seconds) {
                Some(seconds) => (seconds, nanos),
                None => (i64::MIN, 0),
            }
        }
    }
}

/// The time `seconds` (and `nanos`, below one second) from the Unix epoch, or `None` when the
/// system cannot hold it.
pub fn from_unix(seconds: i64, nanos: u32) -> Option<SystemTime> {
    if nanos >= 1_000_000_000 {
        return None;
    }
    let whole = if seconds >= 0 {
        SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(seconds.unsigned_abs()))
    } else {
        SystemTime::UNIX_EPOCH.checked_sub(Duration::from_secs(seconds.unsigned_abs()))
    };
    whole?.checked_add(Duration::from_nanos(u64::from(nanos)))
}

/// `t` as a calendar time in UTC, when its year is within -9999 to 9999.
pub fn utc(t: SystemTime) -> Result<OffsetDateTime, OutOfRange> {
    let (seconds, nanos) = unix(t);
    OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|whole| whole.replace_nanosecond(nanos).ok())
        .ok_or(OutOfRange { seconds })
}

/// A time that can be shown as a calendar time: a [`SystemTime`] (in UTC) or an
/// [`OffsetDateTime`] (with its own offset).
pub trait Calendar {
    /// The calendar time, or `None` when it lies outside the years -9999 to 9999.
    fn calendar(self) -> Option<OffsetDateTime>;
}

impl Calendar for SystemTime {
    fn calendar(self) -> Option<OffsetDateTime> {
        utc(self).ok()
    }
}

impl Calendar for OffsetDateTime {
    fn calendar(self) -> Option<OffsetDateTime> {
        Some(self)
    }
}

/// `t` in RFC 3339, to the second (a [`SystemTime`] in UTC, an [`OffsetDateTime`] with its
/// offset); `None` when RFC 3339 cannot write it (a year outside 0 to 9999).
pub fn rfc3339(t: impl Calendar) -> Option<String> {
    let t = t.calendar()?;
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&Rfc3339).ok()
}

/// The earliest MS-DOS date and time, 1980-01-01 00:00:00: (time, date).
pub const DOS_MIN: (u16, u16) = (0, (1 << 5) | 1);
/// The latest MS-DOS date and time, 2107-12-31 23:59:58: (time, date).
pub const DOS_MAX: (u16, u16) = (
    (23 << 11) | (59 << 5) | (58 / 2),
    ((2107 - 1980) << 9) | (12 << 5) | 31,
);

/// `t` as an MS-DOS (time, date) pair, in UTC and to two seconds (rounded down), clamped to
/// the years DOS dates hold: before 1980 gives [`DOS_MIN`], after 2107 gives [`DOS_MAX`].
pub fn dos(t: SystemTime) -> (u16, u16) {
    let t = match utc(t) {
        Ok(t) => t,
        Err(OutOfRange { seconds }) if seconds < 0 => return DOS_MIN,
        Err(_) => return DOS_MAX,
    };
    match t.year() {
        ..1980 => DOS_MIN,
        2108.. => DOS_MAX,
        year => {
            let time = (u16::from(t.hour()) << 11)
                | (u16::from(t.minute()) << 5)
                | (u16::from(t.second()) / 2);
            // The year is within 1980..=2107 here, so the difference fits 7 bits.
            let date = (((year - 1980) as u16) << 9)
                | (u16::from(u8::from(t.month())) << 5)
                | u16::from(t.day());
            (time, date)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64, nanos: u32) -> SystemTime {
        from_unix(seconds, nanos).expect("a time the system holds")
    }

    /// The furthest times a Unix `SystemTime` holds.
    fn extremes() -> [SystemTime; 2] {
        [at(i64::MAX, 999_999_999), at(i64::MIN, 0)]
    }

    #[test]
    fn unix_seconds_round_trip_and_round_down() {
        for (s, n) in [
            (0, 0),
            (1_700_000_000, 123_456_789),
            (-1, 500_000_000),
            (-86_400, 0),
            (i64::MAX, 999_999_999),
            (i64::MIN, 0),
            (i64::MIN, 1),
        ] {
            assert_eq!(unix(at(s, n)), (s, n), "{s}.{n}");
        }
        // Half a second before 1970 is in the second before it.
        let t = SystemTime::UNIX_EPOCH - Duration::from_millis(500);
        assert_eq!(unix(t), (-1, 500_000_000));
    }

    #[test]
    fn unix_seconds_match_the_calendar_type() {
        for t in [
            at(1_700_000_000, 5),
            at(-1, 999_999_999),
            at(-62_000_000_000, 7),
        ] {
            let calendar = OffsetDateTime::from(t);
            assert_eq!(unix(t), (calendar.unix_timestamp(), calendar.nanosecond()));
        }
    }

    #[test]
    fn times_the_system_cannot_hold_are_none() {
        assert!(from_unix(0, 1_000_000_000).is_none());
        // Adding to the furthest time overflows instead of panicking.
        assert!(from_unix(i64::MAX, 999_999_999).is_some());
        assert!(
            at(i64::MAX, 999_999_999)
                .checked_add(Duration::from_nanos(1))
                .is_none()
        );
    }

    #[test]
    fn calendar_times_fail_outside_their_years() {
        assert_eq!(
            utc(at(1_700_000_000, 42)).unwrap(),
            time::macros::datetime!(2023-11-14 22:13:20.000_000_042 UTC)
        );
        for t in extremes() {
            let err = utc(t).unwrap_err();
            assert!(err.to_string().contains("outside the years"), "{err}");
        }
        assert_eq!(utc(at(i64::MIN, 0)).unwrap_err().seconds, i64::MIN);
        // Year 9999 still is one; 10000 is not.
        assert!(utc(at(253_402_300_799, 0)).is_ok());
        assert!(utc(at(253_402_300_800, 0)).is_err());
    }

    #[test]
    fn rfc3339_to_the_second_or_none() {
        assert_eq!(
            rfc3339(at(1_700_000_000, 123_456_789)).as_deref(),
            Some("2023-11-14T22:13:20Z")
        );
        assert_eq!(rfc3339(at(-1, 0)).as_deref(), Some("1969-12-31T23:59:59Z"));
        let offset = time::macros::datetime!(2024-02-03 04:05:06.7 +02:00);
        assert_eq!(
            rfc3339(offset).as_deref(),
            Some("2024-02-03T04:05:06+02:00")
        );
        for t in extremes() {
            assert_eq!(rfc3339(t), None);
        }
        // A negative year is a calendar time but not RFC 3339.
        assert_eq!(rfc3339(at(-62_200_000_000, 0)), None);
    }

    #[test]
    fn dos_times_and_their_clamps() {
        let (time, date) = dos(at(1_700_000_001, 0)); // 2023-11-14 22:13:21
        assert_eq!(
            (time >> 11, (time >> 5) & 63, (time & 31) * 2),
            (22, 13, 20)
        );
        assert_eq!(
            (1980 + (date >> 9), (date >> 5) & 15, date & 31),
            (2023, 11, 14)
        );
        assert_eq!(dos(SystemTime::UNIX_EPOCH), DOS_MIN);
        assert_eq!(dos(at(315_532_800, 0)), DOS_MIN); // 1980-01-01 00:00:00
        assert_eq!(dos(at(-1, 0)), DOS_MIN);
        assert_eq!(dos(at(i64::MIN, 0)), DOS_MIN);
        assert_eq!(dos(at(4_354_819_199, 0)), DOS_MAX); // 2107-12-31 23:59:59
        assert_eq!(dos(at(4_354_819_200, 0)), DOS_MAX); // 2108-01-01
        assert_eq!(dos(at(253_402_300_800, 0)), DOS_MAX); // year 10000
        assert_eq!(dos(at(i64::MAX, 999_999_999)), DOS_MAX);
        let (time, date) = DOS_MAX;
        assert_eq!(
            (1980 + (date >> 9), (date >> 5) & 15, date & 31),
            (2107, 12, 31)
        );
        assert_eq!(
            (time >> 11, (time >> 5) & 63, (time & 31) * 2),
            (23, 59, 58)
        );
    }
}
