//! `weft mapping suggest|apply|set|unset|exclude|include|create-unmatched|list`: which org
//! each Autotask company belongs to. Exit 0 done, 1 failed (conflict, not found, Autotask
//! error), 2 usage error.

use std::fmt::Write as _;
use std::process::ExitCode;

use serde::Serialize;
use weft_service::ServiceError;
use weft_service::mapping::{
    self, Applied, Company, CompanyFilter, CreatedOrgs, Excluded, Listing, Mapped, OrgBrief,
    Suggestions,
};

use super::engine::EngineArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    db: EngineArgs,
}

/// The integrations that have a mapping.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Integration {
    /// Autotask companies.
    Autotask,
}

/// Which companies to consider.
#[derive(Debug, Clone, clap::Args)]
struct FilterArgs {
    /// Only companies of this type: a `companyType` picklist value (1) or label (Customer,
    /// Lead, Prospect, Dead, Cancelation, Vendor, Partner).
    #[arg(long, value_name = "TYPE")]
    company_type: Option<String>,
    /// An extra condition `op:field:value` (`eq:city:Denver`, `exist:webAddress`,
    /// `in:ownerResourceID:1,2`); repeatable.
    #[arg(long = "filter", value_name = "OP:FIELD:VALUE")]
    filters: Vec<String>,
    /// Also inactive companies.
    #[arg(long)]
    include_inactive: bool,
    /// The org whose Autotask integration is used (default: the root org).
    #[arg(long, value_name = "ORG")]
    org: Option<String>,
}

impl FilterArgs {
    fn filter(&self) -> CompanyFilter {
        CompanyFilter {
            company_type: self.company_type.clone(),
            filters: self.filters.clone(),
            include_inactive: self.include_inactive,
            org: self.org.clone(),
        }
    }
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Suggest mappings: orgs and companies with identical names (case and whitespace
    /// ignored). Stores nothing.
    Suggest {
        /// The integration.
        integration: Integration,
        #[command(flatten)]
        filter: FilterArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Store the suggested mappings.
    Apply {
        /// The integration.
        integration: Integration,
        #[command(flatten)]
        filter: FilterArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Map an org to an Autotask company by hand (lifts the company's exclusion).
    Set {
        /// The org (id or name).
        org: String,
        /// The Autotask company id.
        company_id: i64,
    },
    /// Remove an org's mapping.
    Unset {
        /// The org (id or name).
        org: String,
    },
    /// Never suggest nor create an org for this company (remembered).
    Exclude {
        /// The Autotask company id.
        company_id: i64,
    },
    /// Lift a company's exclusion.
    Include {
        /// The Autotask company id.
        company_id: i64,
    },
    /// Create an org (below the root org) and its mapping for every company that is
    /// neither mapped, matched by name nor excluded.
    CreateUnmatched {
        #[command(flatten)]
        filter: FilterArgs,
        /// Show what would be created; store nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show the mapping: mapped orgs, unmatched orgs, unmatched companies, excluded ones.
    List {
        #[command(flatten)]
        filter: FilterArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: Args) -> miette::Result<ExitCode> {
    super::engine::runtime()?.block_on(run_async(args))
}

fn json_out<T: Serialize>(v: &T) {
    println!("{}", serde_json::to_string_pretty(v).expect("serializable"));
}

/// One line of JSON.
fn compact<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("serializable")
}

fn company_line(c: &Company) -> String {
    let ty = c
        .company_type_label
        .clone()
        .or_else(|| c.company_type.map(|t| t.to_string()))
        .unwrap_or_default();
    let inactive = if c.active { "" } else { " (inactive)" };
    format!("  {:>8}  {}  [{ty}]{inactive}", c.id, c.name)
}

fn org_list(orgs: &[OrgBrief]) -> String {
    let mut s = String::new();
    for o in orgs {
        let _ = writeln!(s, "  {}  ({})", o.id, o.name);
    }
    s
}

fn mapped_table(rows: &[Mapped]) -> String {
    let mut s = String::new();
    for m in rows {
        let _ = writeln!(
            s,
            "  {:<28} {:>8}  {}",
            m.org.id,
            m.company_id,
            m.company_name.as_deref().unwrap_or("")
        );
    }
    s
}

fn excluded_list(rows: &[Excluded]) -> String {
    let mut s = String::new();
    for x in rows {
        let _ = writeln!(
            s,
            "  {:>8}  {}",
            x.company_id,
            x.company_name.as_deref().unwrap_or("")
        );
    }
    s
}

/// The suggestions as `weft mapping suggest` prints them.
fn suggestions_text(s: &Suggestions) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Suggested ({}):", s.matched.len());
    let _ = writeln!(
        out,
        "  {:<28} {:>8}  {:<32} MATCH",
        "ORG", "COMPANY", "NAME"
    );
    for m in &s.matched {
        let _ = writeln!(
            out,
            "  {:<28} {:>8}  {:<32} {}",
            m.org.id,
            m.company.id,
            m.company.name,
            if m.exact { "exact" } else { "case/whitespace" }
        );
    }
    let _ = write!(
        out,
        "Unmatched orgs ({}):\n{}Unmatched companies ({}):\n",
        s.unmatched_orgs.len(),
        org_list(&s.unmatched_orgs),
        s.unmatched_companies.len()
    );
    for c in &s.unmatched_companies {
        let _ = writeln!(out, "{}", company_line(c));
    }
    let _ = write!(
        out,
        "Excluded ({}):\n{}Already mapped ({}):\n{}",
        s.excluded.len(),
        excluded_list(&s.excluded),
        s.already_mapped.len(),
        mapped_table(&s.already_mapped)
    );
    out
}

/// The mappings as `weft mapping list` prints them.
fn listing_text(l: &Listing) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "Mapped ({}):\n{}Unmatched orgs ({}):\n{}",
        l.matched.len(),
        mapped_table(&l.matched),
        l.unmatched_orgs.len(),
        org_list(&l.unmatched_orgs)
    );
    match (&l.unmatched_companies, &l.companies_error) {
        (Some(cs), _) => {
            let _ = writeln!(out, "Unmatched companies ({}):", cs.len());
            for c in cs {
                let _ = writeln!(out, "{}", company_line(c));
            }
        }
        (None, e) => {
            let _ = writeln!(
                out,
                "Unmatched companies: unknown ({})",
                e.as_deref().unwrap_or("Autotask not read")
            );
        }
    }
    let _ = write!(
        out,
        "Excluded ({}):\n{}",
        l.excluded.len(),
        excluded_list(&l.excluded)
    );
    out
}

/// What `weft mapping apply` stored, and what it left.
fn print_applied(s: &Suggestions, applied: &Applied) {
    for m in &applied.mapped {
        println!("mapped {} -> {} {}", m.org.id, m.company.id, m.company.name);
    }
    for f in &applied.failed {
        println!("not mapped: {}", compact(f));
    }
    println!(
        "{} mapped, {} failed; {} orgs and {} companies left unmatched, {} excluded",
        applied.mapped.len(),
        applied.failed.len(),
        s.unmatched_orgs.len(),
        s.unmatched_companies.len(),
        s.excluded.len()
    );
}

/// The orgs `weft mapping create-unmatched` created (or would).
fn print_created(c: &CreatedOrgs, dry_run: bool) {
    let verb = if dry_run { "would create" } else { "created" };
    for x in &c.created {
        println!("{verb} {} ({}) -> {}", x.org.id, x.org.name, x.company.id);
    }
    for f in &c.failed {
        println!("skipped: {}", compact(f));
    }
    println!(
        "{} orgs {verb} below {}; {} skipped, {} excluded, {} name matches wait for `weft mapping apply autotask`",
        c.created.len(),
        c.parent.as_deref().unwrap_or("-"),
        c.failed.len(),
        c.excluded,
        c.pending_matches
    );
}

async fn run_async(args: Args) -> miette::Result<ExitCode> {
    let engine = super::engine::open(&args.db).await?;
    let store = engine.store().as_ref();
    let result: Result<(), ServiceError> = async {
        match args.command {
            Command::Suggest {
                integration: Integration::Autotask,
                filter,
                json,
            } => {
                let s = mapping::suggest(&engine, &filter.filter()).await?;
                if json {
                    json_out(&s);
                    return Ok(());
                }
                print!("{}", suggestions_text(&s));
                if !s.matched.is_empty() {
                    println!(
                        "Store the suggestions with `weft mapping apply autotask` (same filters)."
                    );
                }
            }
            Command::Apply {
                integration: Integration::Autotask,
                filter,
                json,
            } => {
                let s = mapping::suggest(&engine, &filter.filter()).await?;
                let applied = mapping::apply(store, &s).await?;
                if json {
                    json_out(&applied);
                } else {
                    print_applied(&s, &applied);
                }
                if !applied.failed.is_empty() {
                    return Err(ServiceError::conflict(format!(
                        "{} mappings could not be stored",
                        applied.failed.len()
                    )));
                }
            }
            Command::Set { org, company_id } => {
                let m = mapping::set(&engine, &org, company_id, None).await?;
                println!(
                    "mapped {} -> {} {}",
                    m.org.id,
                    m.company_id,
                    m.company_name.as_deref().unwrap_or("")
                );
            }
            Command::Unset { org } => {
                let o = mapping::unset(store, &org).await?;
                println!("unmapped {}", o.org.id);
            }
            Command::Exclude { company_id } => {
                let x = mapping::exclude(&engine, company_id, None).await?;
                println!(
                    "excluded {} {}",
                    x.company_id,
                    x.company_name.as_deref().unwrap_or("")
                );
            }
            Command::Include { company_id } => {
                mapping::include(store, company_id).await?;
                println!("company {company_id} is no longer excluded");
            }
            Command::CreateUnmatched {
                filter,
                dry_run,
                json,
            } => {
                let c = mapping::create_unmatched(&engine, &filter.filter(), dry_run).await?;
                if json {
                    json_out(&c);
                } else {
                    print_created(&c, dry_run);
                }
                if !c.failed.is_empty() {
                    return Err(ServiceError::conflict(format!(
                        "{} companies were skipped",
                        c.failed.len()
                    )));
                }
            }
            Command::List { filter, json } => {
                let l = mapping::list(&engine, &filter.filter()).await?;
                if json {
                    json_out(&l);
                    return Ok(());
                }
                print!("{}", listing_text(&l));
            }
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => Ok(super::org::service_failure(&e)),
    }
}
