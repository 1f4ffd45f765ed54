//! The `autotask.*` actions.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use weft_engine::{ActionContext, ActionError, Registry, TypedAction};

use super::client::Client;
use super::error::AutotaskError;
use super::filter::{FieldOp, Filter, FilterInput, parse_filters};
use crate::{cancelled, invalid_params};

/// Runs `work` with the task's Autotask client, failing early when the execution is cancelled.
pub(super) async fn with_client<F, Fut>(
    cx: &ActionContext,
    action: &str,
    work: F,
) -> Result<Value, ActionError>
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = Result<Value, ActionError>>,
{
    let integration = cx.integration("autotask")?;
    let mut client = Client::from_integration(&integration)?;
    if cx.item_index.is_some() {
        // One item of a `with.items` fan-out: paced when the hourly budget runs low.
        client = client.background();
    }
    tokio::select! {
        biased;
        () = cx.cancel.cancelled() => Err(cancelled(format!("{action} cancelled"))),
        r = work(client) => r,
    }
}

fn filters(action: &str, input: &[FilterInput]) -> Result<Vec<Filter>, ActionError> {
    parse_filters(input).map_err(|e| {
        let mut err = invalid_params(action, &e.message);
        err.data = Some(json!({"status": null, "errors": [e.message]}));
        err
    })
}

/// Lists `entity` records: `{items, count}`.
pub(super) async fn run_list(
    cx: ActionContext,
    action: &'static str,
    entity: &str,
    base: Vec<Filter>,
    filter: Vec<FilterInput>,
    include_fields: Vec<String>,
    max_records: Option<usize>,
) -> Result<Value, ActionError> {
    let entity = entity.to_string();
    let mut f = filters(action, &filter)?;
    if !base.is_empty() {
        let mut all = base;
        all.append(&mut f);
        f = all;
    }
    with_client(&cx, action, |c| async move {
        let items = c.query(&entity, &f, &include_fields, max_records).await?;
        Ok(json!({"count": items.len(), "items": items}))
    })
    .await
}

async fn run_get(
    cx: ActionContext,
    action: &'static str,
    path: String,
    id: i64,
) -> Result<Value, ActionError> {
    with_client(&cx, action, |c| async move { Ok(c.get(&path, id).await?) }).await
}

/// Merges `udfs` into `fields.userDefinedFields` (replacing same-named entries).
fn body_with_udfs(
    action: &str,
    mut fields: Map<String, Value>,
    udfs: Map<String, Value>,
    parent: Option<(&str, i64)>,
) -> Result<Value, ActionError> {
    if let Some((key, id)) = parent
        && !fields.keys().any(|k| k.eq_ignore_ascii_case(key))
    {
        fields.insert(key.to_string(), json!(id));
    }
    if !udfs.is_empty() {
        let list = fields
            .entry("userDefinedFields")
            .or_insert_with(|| Value::Array(Vec::new()));
        let Value::Array(list) = list else {
            return Err(invalid_params(
                action,
                "`fields.userDefinedFields` must be a list of {name, value}",
            ));
        };
        for (name, value) in udfs {
            list.retain(|u| u.get("name").and_then(Value::as_str) != Some(name.as_str()));
            list.push(json!({"name": name, "value": value}));
        }
    }
    Ok(Value::Object(fields))
}

/// Creates at `path`, then fetches the record from `fetch` (one GET): `{id, item}`.
async fn run_create(
    cx: ActionContext,
    action: &'static str,
    path: String,
    fetch: String,
    body: Value,
) -> Result<Value, ActionError> {
    with_client(&cx, action, |c| async move {
        let id = c.create(&path, body).await?;
        Ok(json!({"id": id, "item": fetch_after(&c, &fetch, id).await}))
    })
    .await
}

async fn run_update(
    cx: ActionContext,
    action: &'static str,
    path: String,
    fetch: String,
    id: i64,
    body: Value,
) -> Result<Value, ActionError> {
    with_client(&cx, action, |c| async move {
        let id = c.update(&path, id, body).await?;
        Ok(json!({"id": id, "item": fetch_after(&c, &fetch, id).await}))
    })
    .await
}

/// The record after a write; `null` (with a warning) when it cannot be read back, because the
/// write itself succeeded.
async fn fetch_after(c: &Client, path: &str, id: i64) -> Value {
    match c.get(path, id).await {
        Ok(item) => item,
        Err(e) => {
            tracing::warn!(target: "weft::autotask", error = %e.message, "written, but reading the record back failed");
            Value::Null
        }
    }
}

fn err(e: AutotaskError) -> ActionError {
    e.into_action_error()
}

// ---------------------------------------------------------------------------------------------
// Generated actions

macro_rules! list_action {
    ($ty:ident, $params:ident, $name:literal, $entity:literal, $what:literal) => {
        list_action!(@def $ty, $params, $name, $entity, $what, {}, |_p| Vec::new());
    };
    ($ty:ident, $params:ident, $name:literal, $entity:literal, $what:literal,
     optional $pid:ident: $pfield:literal, $pdoc:literal) => {
        list_action!(@def $ty, $params, $name, $entity, $what, {
            #[doc = concat!("Only ", $what, " of this ", $pdoc, " (a `", $pfield, "` condition added to `filter`).")]
            pub $pid: Option<i64>,
        }, |p: &$params| p.$pid.map(|id| vec![Filter::field($pfield, FieldOp::Eq, id)]).unwrap_or_default());
    };
    ($ty:ident, $params:ident, $name:literal, $entity:literal, $what:literal,
     required $pid:ident: $pfield:literal, $pdoc:literal) => {
        list_action!(@def $ty, $params, $name, $entity, $what, {
            #[doc = concat!("The ", $pdoc, " whose ", $what, " to list.")]
            pub $pid: i64,
        }, |p: &$params| vec![Filter::field($pfield, FieldOp::Eq, p.$pid)]);
    };
    (@def $ty:ident, $params:ident, $name:literal, $entity:literal, $what:literal, { $($extra:tt)* }, $base:expr) => {
        #[doc = concat!("Parameters of `", $name, "`: which ", $what, " to list (Autotask `", $entity, "`).")]
        #[derive(Debug, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $params {
            $($extra)*
            #[doc = concat!("Conditions on ", $entity, " fields, all of which must hold: `[{op, field, value}]`, with `and`/`or` groups (`{op: or, items: [...]}`) and `udf: true` for one user-defined field. Every record when omitted.")]
            #[serde(default)]
            pub filter: Vec<FilterInput>,
            /// Return only these fields (`id` is always included); all fields when omitted.
            #[serde(default)]
            pub include_fields: Vec<String>,
            /// Stop after this many records; all pages are read when omitted.
            pub max_records: Option<usize>,
        }

        #[doc = concat!("`", $name, "`.")]
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $ty;

        impl TypedAction for $ty {
            const NAME: &'static str = $name;
            const DESCRIPTION: &'static str = concat!("Lists Autotask ", $what, " matching a filter, reading every page; returns {items, count}.");
            type Params = $params;

            async fn run(&self, cx: ActionContext, p: $params) -> Result<Value, ActionError> {
                #[allow(clippy::redundant_closure_call)]
                let base: Vec<Filter> = ($base)(&p);
                run_list(cx, $name, $entity, base, p.filter, p.include_fields, p.max_records).await
            }
        }
    };
}

macro_rules! get_action {
    ($ty:ident, $params:ident, $name:literal, $entity:literal, $what:literal) => {
        #[doc = concat!("Parameters of `", $name, "`.")]
        #[derive(Debug, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $params {
            #[doc = concat!("The id of the ", $what, ".")]
            pub id: i64,
        }

        #[doc = concat!("`", $name, "`.")]
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $ty;

        impl TypedAction for $ty {
            const NAME: &'static str = $name;
            const DESCRIPTION: &'static str = concat!(
                "Reads one Autotask ",
                $what,
                " by id (fails when it does not exist)."
            );
            type Params = $params;

            async fn run(&self, cx: ActionContext, p: $params) -> Result<Value, ActionError> {
                run_get(cx, $name, $entity.to_string(), p.id).await
            }
        }
    };
}

macro_rules! create_action {
    ($ty:ident, $params:ident, $name:literal, $entity:literal, $what:literal, $required:literal) => {
        create_action!(@def $ty, $params, $name, $entity, $what, $required, {}, |_p: &$params| ($entity.to_string(), None));
    };
    ($ty:ident, $params:ident, $name:literal, $entity:literal, $what:literal, $required:literal,
     child $parent:literal / $pid:ident: $pfield:literal / $child:literal, $pdoc:literal) => {
        create_action!(@def $ty, $params, $name, $entity, $what, $required, {
            #[doc = concat!("The ", $pdoc, " the ", $what, " belongs to (`POST /", $parent, "/{", stringify!($pid), "}/", $child, "`; also sent as `", $pfield, "`).")]
            pub $pid: i64,
        }, |p: &$params| (format!("{}/{}/{}", $parent, p.$pid, $child), Some(($pfield, p.$pid))));
    };
    (@def $ty:ident, $params:ident, $name:literal, $entity:literal, $what:literal, $required:literal, { $($extra:tt)* }, $path:expr) => {
        #[doc = concat!("Parameters of `", $name, "`: the new ", $what, ".")]
        #[derive(Debug, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $params {
            $($extra)*
            #[doc = concat!("The ", $what, "'s fields by API name (camelCase), e.g. ", $required, ". User-defined fields go in `userDefinedFields: [{name, value}]` or in `udfs`.")]
            pub fields: Map<String, Value>,
            /// User-defined fields as `{name: value}`, merged into `fields.userDefinedFields`.
            #[serde(default)]
            pub udfs: Map<String, Value>,
        }

        #[doc = concat!("`", $name, "`.")]
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $ty;

        impl TypedAction for $ty {
            const NAME: &'static str = $name;
            const DESCRIPTION: &'static str = concat!("Creates an Autotask ", $what, "; returns {id, item}. Never retried automatically.");
            type Params = $params;

            async fn run(&self, cx: ActionContext, p: $params) -> Result<Value, ActionError> {
                #[allow(clippy::redundant_closure_call)]
                let (path, parent): (String, Option<(&str, i64)>) = ($path)(&p);
                let body = body_with_udfs($name, p.fields, p.udfs, parent)?;
                run_create(cx, $name, path, $entity.to_string(), body).await
            }
        }
    };
}

macro_rules! update_action {
    ($ty:ident, $params:ident, $name:literal, $entity:literal, $what:literal) => {
        update_action!(@def $ty, $params, $name, $entity, $what, {}, |_p: &$params| ($entity.to_string(), None));
    };
    ($ty:ident, $params:ident, $name:literal, $entity:literal, $what:literal,
     child $parent:literal / $pid:ident: $pfield:literal / $child:literal, $pdoc:literal) => {
        update_action!(@def $ty, $params, $name, $entity, $what, {
            #[doc = concat!("The ", $pdoc, " the ", $what, " belongs to (`PATCH /", $parent, "/{", stringify!($pid), "}/", $child, "`).")]
            pub $pid: i64,
        }, |p: &$params| (format!("{}/{}/{}", $parent, p.$pid, $child), None::<(&str, i64)>));
    };
    (@def $ty:ident, $params:ident, $name:literal, $entity:literal, $what:literal, { $($extra:tt)* }, $path:expr) => {
        #[doc = concat!("Parameters of `", $name, "`: which ", $what, " to change and how.")]
        #[derive(Debug, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $params {
            $($extra)*
            #[doc = concat!("The id of the ", $what, ".")]
            pub id: i64,
            /// Only the fields to change, by API name (PATCH: other fields keep their values).
            /// User-defined fields go in `userDefinedFields: [{name, value}]` or in `udfs`.
            #[serde(default)]
            pub fields: Map<String, Value>,
            /// User-defined fields as `{name: value}`, merged into `fields.userDefinedFields`.
            #[serde(default)]
            pub udfs: Map<String, Value>,
        }

        #[doc = concat!("`", $name, "`.")]
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $ty;

        impl TypedAction for $ty {
            const NAME: &'static str = $name;
            const DESCRIPTION: &'static str = concat!("Updates fields of an Autotask ", $what, " (PATCH); returns {id, item}.");
            type Params = $params;

            async fn run(&self, cx: ActionContext, p: $params) -> Result<Value, ActionError> {
                #[allow(clippy::redundant_closure_call)]
                let (path, parent): (String, Option<(&str, i64)>) = ($path)(&p);
                let body = body_with_udfs($name, p.fields, p.udfs, parent)?;
                run_update(cx, $name, path, $entity.to_string(), p.id, body).await
            }
        }
    };
}

// Companies
list_action!(
    ListCompanies,
    ListCompaniesParams,
    "autotask.list_companies",
    "Companies",
    "companies"
);
get_action!(
    GetCompany,
    GetCompanyParams,
    "autotask.get_company",
    "Companies",
    "company"
);
create_action!(
    CreateCompany,
    CreateCompanyParams,
    "autotask.create_company",
    "Companies",
    "company",
    "`companyName`, `companyType`, `phone`, `ownerResourceID` (required)"
);
update_action!(
    UpdateCompany,
    UpdateCompanyParams,
    "autotask.update_company",
    "Companies",
    "company"
);
// Company locations
list_action!(ListCompanyLocations, ListCompanyLocationsParams, "autotask.list_company_locations", "CompanyLocations", "company locations", optional company_id: "companyID", "company");
create_action!(CreateCompanyLocation, CreateCompanyLocationParams, "autotask.create_company_location", "CompanyLocations", "company location", "`name`, `address1`, `city`", child "Companies" / company_id: "companyID" / "Locations", "company");
// Contacts
list_action!(ListContacts, ListContactsParams, "autotask.list_contacts", "Contacts", "contacts", optional company_id: "companyID", "company");
get_action!(
    GetContact,
    GetContactParams,
    "autotask.get_contact",
    "Contacts",
    "contact"
);
create_action!(CreateContact, CreateContactParams, "autotask.create_contact", "Contacts", "contact", "`firstName`, `lastName`, `isActive` (1 or 0) (required), `emailAddress`", child "Companies" / company_id: "companyID" / "Contacts", "company");
update_action!(UpdateContact, UpdateContactParams, "autotask.update_contact", "Contacts", "contact", child "Companies" / company_id: "companyID" / "Contacts", "company");
// Configuration items
list_action!(
    ListConfigurationItems,
    ListConfigurationItemsParams,
    "autotask.list_configuration_items",
    "ConfigurationItems",
    "configuration items"
);
get_action!(
    GetConfigurationItem,
    GetConfigurationItemParams,
    "autotask.get_configuration_item",
    "ConfigurationItems",
    "configuration item"
);
create_action!(
    CreateConfigurationItem,
    CreateConfigurationItemParams,
    "autotask.create_configuration_item",
    "ConfigurationItems",
    "configuration item",
    "`companyID`, `productID`, `isActive` (required)"
);
update_action!(
    UpdateConfigurationItem,
    UpdateConfigurationItemParams,
    "autotask.update_configuration_item",
    "ConfigurationItems",
    "configuration item"
);
// Contracts
list_action!(
    ListContracts,
    ListContractsParams,
    "autotask.list_contracts",
    "Contracts",
    "contracts"
);
get_action!(
    GetContract,
    GetContractParams,
    "autotask.get_contract",
    "Contracts",
    "contract"
);
create_action!(
    CreateContract,
    CreateContractParams,
    "autotask.create_contract",
    "Contracts",
    "contract",
    "`companyID`, `contractName`, `contractType`, `startDate`, `endDate`, `status`, `timeReportingRequiresStartAndStopTimes` (required)"
);
update_action!(
    UpdateContract,
    UpdateContractParams,
    "autotask.update_contract",
    "Contracts",
    "contract"
);
// Documents
list_action!(
    ListDocuments,
    ListDocumentsParams,
    "autotask.list_documents",
    "Documents",
    "documents"
);
get_action!(
    GetDocument,
    GetDocumentParams,
    "autotask.get_document",
    "Documents",
    "document"
);
create_action!(CreateDocumentAttachment, CreateDocumentAttachmentParams, "autotask.create_document_attachment", "DocumentAttachments", "document attachment", "`title`, `attachmentType` (`FILE_ATTACHMENT`, `URL`…), `fullPath`, `data` (base64)", child "Documents" / document_id: "parentID" / "Attachments", "document");
// Projects, phases, tasks
list_action!(
    ListProjects,
    ListProjectsParams,
    "autotask.list_projects",
    "Projects",
    "projects"
);
get_action!(
    GetProject,
    GetProjectParams,
    "autotask.get_project",
    "Projects",
    "project"
);
create_action!(
    CreateProject,
    CreateProjectParams,
    "autotask.create_project",
    "Projects",
    "project",
    "`projectName`, `companyID`, `projectType`, `startDateTime`, `endDateTime`, `status` (required)"
);
update_action!(
    UpdateProject,
    UpdateProjectParams,
    "autotask.update_project",
    "Projects",
    "project"
);
list_action!(ListProjectPhases, ListProjectPhasesParams, "autotask.list_project_phases", "Phases", "project phases", required project_id: "projectID", "project");
list_action!(ListProjectTasks, ListProjectTasksParams, "autotask.list_project_tasks", "Tasks", "project tasks", required project_id: "projectID", "project");
create_action!(CreateProjectTask, CreateProjectTaskParams, "autotask.create_project_task", "Tasks", "project task", "`title`, `taskType` (1 fixed work, 2 fixed duration), `status` (required)", child "Projects" / project_id: "projectID" / "Tasks", "project");
// Resources, surveys, ticket categories
list_action!(
    ListResources,
    ListResourcesParams,
    "autotask.list_resources",
    "Resources",
    "resources"
);
get_action!(
    GetResource,
    GetResourceParams,
    "autotask.get_resource",
    "Resources",
    "resource"
);
list_action!(
    ListSurveys,
    ListSurveysParams,
    "autotask.list_surveys",
    "Surveys",
    "surveys"
);
get_action!(
    GetSurvey,
    GetSurveyParams,
    "autotask.get_survey",
    "Surveys",
    "survey"
);
list_action!(
    ListTicketCategories,
    ListTicketCategoriesParams,
    "autotask.list_ticket_categories",
    "TicketCategories",
    "ticket categories"
);
get_action!(
    GetTicketCategory,
    GetTicketCategoryParams,
    "autotask.get_ticket_category",
    "TicketCategories",
    "ticket category"
);
// Tickets and notes
list_action!(
    ListTickets,
    ListTicketsParams,
    "autotask.list_tickets",
    "Tickets",
    "tickets"
);
get_action!(
    GetTicket,
    GetTicketParams,
    "autotask.get_ticket",
    "Tickets",
    "ticket"
);
create_action!(
    CreateTicket,
    CreateTicketParams,
    "autotask.create_ticket",
    "Tickets",
    "ticket",
    "`companyID`, `title`, `status`, `priority` (required), `queueID`, `description`"
);
update_action!(
    UpdateTicket,
    UpdateTicketParams,
    "autotask.update_ticket",
    "Tickets",
    "ticket"
);
list_action!(ListTicketNotes, ListTicketNotesParams, "autotask.list_ticket_notes", "TicketNotes", "ticket notes", optional ticket_id: "ticketID", "ticket");
create_action!(CreateTicketNote, CreateTicketNoteParams, "autotask.create_ticket_note", "TicketNotes", "ticket note", "`description`, `noteType`, `publish` (required), `title`", child "Tickets" / ticket_id: "ticketID" / "Notes", "ticket");
update_action!(UpdateTicketNote, UpdateTicketNoteParams, "autotask.update_ticket_note", "TicketNotes", "ticket note", child "Tickets" / ticket_id: "ticketID" / "Notes", "ticket");
// Time entries
list_action!(
    ListTimeEntries,
    ListTimeEntriesParams,
    "autotask.list_time_entries",
    "TimeEntries",
    "time entries"
);
get_action!(
    GetTimeEntry,
    GetTimeEntryParams,
    "autotask.get_time_entry",
    "TimeEntries",
    "time entry"
);
create_action!(
    CreateTimeEntry,
    CreateTimeEntryParams,
    "autotask.create_time_entry",
    "TimeEntries",
    "time entry",
    "`resourceID`, `ticketID` or `taskID`, `dateWorked`, `hoursWorked`, `summaryNotes`"
);
update_action!(
    UpdateTimeEntry,
    UpdateTimeEntryParams,
    "autotask.update_time_entry",
    "TimeEntries",
    "time entry"
);
// Webhooks
list_action!(
    ListConfigurationItemWebhooks,
    ListConfigurationItemWebhooksParams,
    "autotask.list_configuration_item_webhooks",
    "ConfigurationItemWebhooks",
    "configuration item webhooks"
);
list_action!(
    ListWebhookEventErrorLogs,
    ListWebhookEventErrorLogsParams,
    "autotask.list_webhook_event_error_logs",
    "WebhookEventErrorLogs",
    "webhook event error logs"
);
get_action!(
    GetWebhookEventErrorLog,
    GetWebhookEventErrorLogParams,
    "autotask.get_webhook_event_error_log",
    "WebhookEventErrorLogs",
    "webhook event error log"
);

pub(crate) fn register(r: &mut Registry) {
    r.register(VersionInfo);
    r.register(Request);
    r.register(Query);
    r.register(Picklist);
    r.register(ListCompanies);
    r.register(GetCompany);
    r.register(CreateCompany);
    r.register(UpdateCompany);
    r.register(ListCompanyLocations);
    r.register(CreateCompanyLocation);
    r.register(ListContacts);
    r.register(GetContact);
    r.register(CreateContact);
    r.register(UpdateContact);
    r.register(ListConfigurationItems);
    r.register(GetConfigurationItem);
    r.register(CreateConfigurationItem);
    r.register(UpdateConfigurationItem);
    r.register(ListContracts);
    r.register(GetContract);
    r.register(CreateContract);
    r.register(UpdateContract);
    r.register(ListDocuments);
    r.register(GetDocument);
    r.register(CreateDocumentAttachment);
    r.register(ListProjects);
    r.register(GetProject);
    r.register(CreateProject);
    r.register(UpdateProject);
    r.register(ListProjectPhases);
    r.register(ListProjectTasks);
    r.register(CreateProjectTask);
    r.register(ListResources);
    r.register(GetResource);
    r.register(ListSurveys);
    r.register(GetSurvey);
    r.register(ListTicketCategories);
    r.register(GetTicketCategory);
    r.register(ListTickets);
    r.register(GetTicket);
    r.register(CreateTicket);
    r.register(UpdateTicket);
    r.register(ListTicketNotes);
    r.register(CreateTicketNote);
    r.register(UpdateTicketNote);
    r.register(ListTimeEntries);
    r.register(GetTimeEntry);
    r.register(CreateTimeEntry);
    r.register(UpdateTimeEntry);
    r.register(ListConfigurationItemWebhooks);
    r.register(ListWebhookEventErrorLogs);
    r.register(GetWebhookEventErrorLog);
    super::webhooks::register(r);
}

// ---------------------------------------------------------------------------------------------
// autotask.version_info

/// `autotask.version_info` takes no parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionInfoParams {}

/// `autotask.version_info`.
#[derive(Debug, Clone, Copy, Default)]
pub struct VersionInfo;

impl TypedAction for VersionInfo {
    const NAME: &'static str = "autotask.version_info";
    const DESCRIPTION: &'static str =
        "Reads the API versions Autotask supports (GET /VersionInformation): {apiVersions: [...]}.";
    type Params = VersionInfoParams;

    async fn run(&self, cx: ActionContext, _p: VersionInfoParams) -> Result<Value, ActionError> {
        with_client(&cx, Self::NAME, |c| async move {
            c.version_info().await.map_err(err)
        })
        .await
    }
}

// ---------------------------------------------------------------------------------------------
// autotask.request

/// HTTP methods of `autotask.request`.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, Default, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
#[allow(
    missing_docs,
    reason = "the variants are the wire names; docs on them would turn the JSON Schema `enum` into a `oneOf`"
)]
pub enum AtMethod {
    #[default]
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

/// Parameters of `autotask.request`: any Autotask REST call, with the integration's
/// credentials, zone, retries and limits.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestParams {
    /// HTTP method. POSTs other than queries are sent again after a 429 or the thread limit
    /// only, never after a 5xx or a timeout.
    #[serde(default)]
    pub method: AtMethod,
    /// Path under the zone's `V1.0/`, e.g. `Tickets/123`, `Companies/entityInformation/fields`
    /// (a leading `V1.0/` is accepted too).
    pub path: String,
    /// Query-string parameters; values are sent as their text.
    #[serde(default)]
    pub query: Map<String, Value>,
    /// A JSON body.
    pub body: Option<Value>,
}

/// `autotask.request`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Request;

impl TypedAction for Request {
    const NAME: &'static str = "autotask.request";
    const DESCRIPTION: &'static str =
        "Sends any request to the Autotask REST API; the result is the JSON answer.";
    type Params = RequestParams;

    async fn run(&self, cx: ActionContext, p: RequestParams) -> Result<Value, ActionError> {
        if p.path.contains("://") {
            return Err(invalid_params(
                Self::NAME,
                "`path` is relative to the zone (e.g. `Tickets/1`), not a URL",
            ));
        }
        // Autotask's routes are ASCII: anything else is a mistake (or an attempt), not a route.
        if let Some(bad) = p.path.chars().find(|c| !c.is_ascii_graphic()) {
            return Err(invalid_params(
                Self::NAME,
                format!(
                    "`path` may only hold ASCII letters, digits and URL punctuation (e.g. \
                     `Tickets/1`); it has {bad:?}"
                ),
            ));
        }
        let method = match p.method {
            AtMethod::Get => reqwest::Method::GET,
            AtMethod::Post => reqwest::Method::POST,
            AtMethod::Put => reqwest::Method::PUT,
            AtMethod::Patch => reqwest::Method::PATCH,
            AtMethod::Delete => reqwest::Method::DELETE,
        };
        let query: Vec<(String, String)> = p
            .query
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string()),
                )
            })
            .collect();
        with_client(&cx, Self::NAME, |c| async move {
            c.request(method, &p.path, query, p.body).await.map_err(err)
        })
        .await
    }
}

// ---------------------------------------------------------------------------------------------
// autotask.query

/// Parameters of `autotask.query`: query any entity.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryParams {
    /// The entity, as in the URL: `Tickets`, `Companies`, `ConfigurationItems`, `TicketNotes`…
    pub entity: String,
    /// Conditions, all of which must hold: `[{op, field, value}]`, with `and`/`or` groups
    /// (`{op: or, items: [...]}`) and `udf: true` for one user-defined field. Every record
    /// when omitted.
    #[serde(default)]
    pub filter: Vec<FilterInput>,
    /// Return only these fields (`id` is always included); all fields when omitted.
    #[serde(default)]
    pub include_fields: Vec<String>,
    /// Stop after this many records; all pages are read when omitted.
    pub max_records: Option<usize>,
    /// Only count the matching records (`/query/count`): the result is `{count}`.
    #[serde(default)]
    pub count_only: bool,
}

/// `autotask.query`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query;

impl TypedAction for Query {
    const NAME: &'static str = "autotask.query";
    const DESCRIPTION: &'static str =
        "Queries any Autotask entity with a filter, reading every page; returns {items, count}.";
    type Params = QueryParams;

    async fn run(&self, cx: ActionContext, p: QueryParams) -> Result<Value, ActionError> {
        let entity = p.entity.trim().to_string();
        if entity.is_empty() || !entity.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(invalid_params(
                Self::NAME,
                format!("`entity` must be an entity name like `Tickets`, not `{entity}`"),
            ));
        }
        if !p.count_only {
            return run_list(
                cx,
                Self::NAME,
                &entity,
                Vec::new(),
                p.filter,
                p.include_fields,
                p.max_records,
            )
            .await;
        }
        let f = filters(Self::NAME, &p.filter)?;
        with_client(&cx, Self::NAME, |c| async move {
            let n = c.count(&entity, &f).await?;
            Ok(json!({"count": n}))
        })
        .await
    }
}

// ---------------------------------------------------------------------------------------------
// autotask.picklist

/// Parameters of `autotask.picklist`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PicklistParams {
    /// The entity, e.g. `Tickets`.
    pub entity: String,
    /// The picklist field, e.g. `status`, `priority`, `queueID`.
    pub field: String,
    /// When given, the result is `{value, label}` for the entry with this label
    /// (case-insensitive); else `{values: [{value, label, isActive, …}]}`.
    pub label: Option<String>,
}

/// `autotask.picklist`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Picklist;

impl TypedAction for Picklist {
    const NAME: &'static str = "autotask.picklist";
    const DESCRIPTION: &'static str =
        "Reads a picklist's values (from entityInformation/fields, cached), or looks a label up.";
    type Params = PicklistParams;

    async fn run(&self, cx: ActionContext, p: PicklistParams) -> Result<Value, ActionError> {
        with_client(&cx, Self::NAME, |c| async move {
            match p.label {
                Some(label) => {
                    let value = c.lookup(&p.entity, &p.field, &label).await?;
                    Ok(json!({"value": value, "label": label}))
                }
                None => Ok(json!({"values": c.picklist(&p.entity, &p.field).await?})),
            }
        })
        .await
    }
}
