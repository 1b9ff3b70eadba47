//! The programme's view over the logs (issue 14): who the mentors are, how active they are,
//! what a mentor's complete data looks like as one archive.
//!
//! Pure (no `worker`): [`directory`] (people, cohorts, mentees, their uids), [`activity`]
//! (sessions and hours per week per person, who has gone quiet), [`archive`] (the layout and
//! cursor of a mentor's archive). SQL: [`repo`]. The analytics themselves are
//! `omi::analytics`; linking real-time transcripts to memories is `omi::link`.

pub mod activity;
pub mod archive;
pub mod directory;
pub mod params;
pub mod repo;
