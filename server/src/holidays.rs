//! Public holidays on the server: the scheduler's exceptions to the legal calendar (a day
//! closed, a legal holiday worked) kept per territory in the registry file, the `Calendar`
//! rounds are planned with, and the `holiday list|add|remove` commands.
//!
//! The legal days themselves are computed (`tournee_core::holidays`), never stored. What it
//! does not do: plan passages (`scheduling` skips the closed days it is given).

use std::collections::{BTreeMap, HashMap};

use anyhow::{bail, Result};
use chrono::NaiveDate;
use clap::{Args, Subcommand};
use rusqlite::params;
use serde_json::json;
use tournee_cli::output::{print_json, print_line, print_table, Format};
use tournee_core::holidays::{legal_holidays, Calendar, Exception};
use tournee_core::limits::LABEL_BYTES_MAX;
use tournee_core::model::{check_territory, check_text};
use tournee_core::time::parse_date;

use crate::config::DataDir;
use crate::registry::{Registry, RegistryError};
use crate::users::CLI_ACTOR;

impl Registry {
    /// Every territory's exceptions, as the calendar rounds are planned with.
    pub fn calendar(&self) -> Result<Calendar, RegistryError> {
        let mut stmt = self
            .conn()
            .prepare("SELECT territory, date, closed, label FROM holiday_exceptions")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)? == 1,
                r.get::<_, String>(3)?,
            ))
        })?;
        let mut map: HashMap<String, BTreeMap<NaiveDate, Exception>> = HashMap::new();
        for row in rows {
            let (territory, date, closed, label) = row?;
            let Ok(date) = NaiveDate::parse_from_str(&date, "%Y-%m-%d") else {
                continue;
            };
            let e = if closed {
                Exception::Closed(label)
            } else {
                Exception::Open
            };
            map.entry(territory).or_default().insert(date, e);
        }
        Ok(Calendar::new(map))
    }

    /// Close `date` in `territory` (a legal holiday worked until now is a day off again).
    /// Returns what the day is now called.
    pub fn close_day(
        &self,
        territory: &str,
        date: NaiveDate,
        label: Option<&str>,
    ) -> Result<String, RegistryError> {
        check_territory("territory", territory)?;
        let legal = legal_name(territory, date);
        let cal = self.calendar()?;
        if let Some(name) = cal.closed(territory, date) {
            return Err(RegistryError::Account(format!(
                "date : le {date} est déjà un jour sans passage dans le {territory} ({name})"
            )));
        }
        if let Some(name) = legal {
            self.conn().execute(
                "DELETE FROM holiday_exceptions WHERE territory = ?1 AND date = ?2",
                params![territory, date.to_string()],
            )?;
            return Ok(name);
        }
        let label = label.unwrap_or("Fermeture").trim();
        check_text("label", label, LABEL_BYTES_MAX)?;
        self.conn().execute(
            "INSERT OR REPLACE INTO holiday_exceptions (territory, date, closed, label)
             VALUES (?1, ?2, 1, ?3)",
            params![territory, date.to_string(), label],
        )?;
        Ok(label.to_owned())
    }

    /// Open `date` in `territory`: a day closed by `close_day` is a working day again, a
    /// legal holiday is worked. Returns the name of the day that no longer stops the rounds.
    pub fn open_day(&self, territory: &str, date: NaiveDate) -> Result<String, RegistryError> {
        check_territory("territory", territory)?;
        let Some(name) = self.calendar()?.closed(territory, date) else {
            return Err(RegistryError::Account(format!(
                "date : le {date} n'est pas un jour férié ni une fermeture dans le {territory} \
                 (voir `tournee-server holiday list`)"
            )));
        };
        if legal_name(territory, date).is_some() {
            self.conn().execute(
                "INSERT OR REPLACE INTO holiday_exceptions (territory, date, closed, label)
                 VALUES (?1, ?2, 0, ?3)",
                params![territory, date.to_string(), name],
            )?;
        } else {
            self.conn().execute(
                "DELETE FROM holiday_exceptions WHERE territory = ?1 AND date = ?2",
                params![territory, date.to_string()],
            )?;
        }
        Ok(name)
    }
}

fn legal_name(territory: &str, date: NaiveDate) -> Option<String> {
    use chrono::Datelike;
    legal_holidays(territory, date.year())
        .into_iter()
        .find(|h| h.date == date)
        .map(|h| h.label)
}

/// `holiday …`.
#[derive(Debug, Subcommand)]
pub enum HolidayCmd {
    /// The days without passages of a territory's year: legal holidays and closures, and the
    /// legal holidays worked.
    List(HolidayList),
    /// Close a day in a territory (no passage is planned on it), or make a worked legal
    /// holiday a day off again.
    Add(HolidayAdd),
    /// Plan passages on a day again: a closure removed, or a legal holiday worked.
    Remove(HolidayRemove),
}

/// `holiday list`.
#[derive(Debug, Args)]
pub struct HolidayList {
    /// Territory (département code).
    #[arg(long, value_name = "CODE")]
    pub territory: String,
    /// Year.
    #[arg(long, value_name = "YYYY")]
    pub year: i32,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// `holiday add`.
#[derive(Debug, Args)]
pub struct HolidayAdd {
    /// Territory (département code).
    #[arg(long, value_name = "CODE")]
    pub territory: String,
    /// The day (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub date: String,
    /// The day's name (a closure; default « Fermeture »).
    #[arg(long)]
    pub label: Option<String>,
}

/// `holiday remove`.
#[derive(Debug, Args)]
pub struct HolidayRemove {
    /// Territory (département code).
    #[arg(long, value_name = "CODE")]
    pub territory: String,
    /// The day (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub date: String,
}

/// Run a `holiday` command; a change re-plans the territory's rounds at once.
pub fn holiday_cmd(data: &DataDir, cmd: HolidayCmd, now_ms: u64, today: NaiveDate) -> Result<()> {
    data.require()?;
    let reg = Registry::open(&data.registry())?;
    match cmd {
        HolidayCmd::List(a) => {
            check_territory("territory", &a.territory)?;
            if !(2000..=2100).contains(&a.year) {
                bail!("year : {} n'est pas une année entre 2000 et 2100", a.year);
            }
            let days = reg.calendar()?.year(&a.territory, a.year);
            match a.format {
                Format::Json => {
                    print_json(&json!({ "territory": a.territory, "year": a.year, "days": days }))
                }
                Format::Table => print_table(
                    &["date", "name", "kind", "passages"],
                    &days
                        .iter()
                        .map(|d| {
                            vec![
                                d.date.to_string(),
                                d.label.clone(),
                                if d.legal { "legal" } else { "closure" }.to_owned(),
                                if d.worked { "planned" } else { "none" }.to_owned(),
                            ]
                        })
                        .collect::<Vec<_>>(),
                ),
            }
        }
        HolidayCmd::Add(a) => {
            let date = parse_date("date", &a.date)?;
            let name = reg.close_day(&a.territory, date, a.label.as_deref())?;
            reg.audit(
                now_ms,
                CLI_ACTOR,
                "holiday.add",
                Some(&a.territory),
                &format!("{date} {name}"),
            )?;
            let r = crate::scheduling::replan_territory(data, &reg, &a.territory, now_ms, today)?;
            print_line(format_args!(
                "{date} ({name}) : pas de passage dans le {} ; {} passage(s) retiré(s)",
                a.territory, r.removed
            ))
        }
        HolidayCmd::Remove(a) => {
            let date = parse_date("date", &a.date)?;
            let name = reg.open_day(&a.territory, date)?;
            reg.audit(
                now_ms,
                CLI_ACTOR,
                "holiday.remove",
                Some(&a.territory),
                &format!("{date} {name}"),
            )?;
            let r = crate::scheduling::replan_territory(data, &reg, &a.territory, now_ms, today)?;
            print_line(format_args!(
                "{date} ({name}) : les passages sont prévus dans le {} ; {} passage(s) ajouté(s)",
                a.territory, r.created
            ))
        }
    }
}
