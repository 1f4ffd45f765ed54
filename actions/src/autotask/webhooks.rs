//! Webhook management actions for the five webhook entities (`CompanyWebhooks`,
//! `ContactWebhooks`, `ConfigurationItemWebhooks`, `TicketWebhooks`, `TicketNoteWebhooks`)
//! and their `Fields` and `ExcludedResources` children.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use weft_engine::{ActionContext, ActionError, Registry, TypedAction};

use super::actions::{run_list, with_client};
use super::client::Client;
use super::filter::FilterInput;

pub(crate) fn register(r: &mut Registry) {
    r.register(ListWebhooks);
    r.register(GetWebhook);
    r.register(CreateWebhook);
    r.register(UpdateWebhook);
    r.register(DeleteWebhook);
    r.register(AddWebhookField);
    r.register(DeleteWebhookField);
    r.register(AddWebhookExcludedResource);
    r.register(DeleteWebhookExcludedResource);
}

/// The entity a webhook watches.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[allow(
    missing_docs,
    reason = "the variants are the wire names; docs on them would turn the JSON Schema `enum` into a `oneOf`"
)]
pub enum WebhookEntity {
    Company,
    Contact,
    ConfigurationItem,
    Ticket,
    TicketNote,
}

impl WebhookEntity {
    fn path(self) -> &'static str {
        match self {
            WebhookEntity::Company => "CompanyWebhooks",
            WebhookEntity::Contact => "ContactWebhooks",
            WebhookEntity::ConfigurationItem => "ConfigurationItemWebhooks",
            WebhookEntity::Ticket => "TicketWebhooks",
            WebhookEntity::TicketNote => "TicketNoteWebhooks",
        }
    }
}

/// The children of a webhook: `{fields, excluded_resources}`.
async fn children(
    c: &Client,
    entity: WebhookEntity,
    id: i64,
) -> Result<(Value, Value), ActionError> {
    let base = format!("{}/{id}", entity.path());
    let fields = c
        .request(
            reqwest::Method::GET,
            &format!("{base}/Fields"),
            vec![],
            None,
        )
        .await?;
    let excluded = c
        .request(
            reqwest::Method::GET,
            &format!("{base}/ExcludedResources"),
            vec![],
            None,
        )
        .await?;
    let items = |v: Value| v.get("items").cloned().unwrap_or(json!([]));
    Ok((items(fields), items(excluded)))
}

// ---------------------------------------------------------------------------------------------

/// Parameters of `autotask.list_webhooks`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListWebhooksParams {
    /// The entity whose webhooks to list: `Company`, `Contact`, `ConfigurationItem`, `Ticket`
    /// or `TicketNote`.
    pub entity: WebhookEntity,
    /// Conditions on webhook fields (`[{op, field, value}]`); every webhook when omitted.
    #[serde(default)]
    pub filter: Vec<FilterInput>,
    /// Return only these fields (`id` is always included).
    #[serde(default)]
    pub include_fields: Vec<String>,
    /// Stop after this many webhooks.
    pub max_records: Option<usize>,
}

/// `autotask.list_webhooks`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListWebhooks;

impl TypedAction for ListWebhooks {
    const NAME: &'static str = "autotask.list_webhooks";
    const DESCRIPTION: &'static str =
        "Lists the Autotask webhooks of an entity; returns {items, count}.";
    type Params = ListWebhooksParams;

    async fn run(&self, cx: ActionContext, p: ListWebhooksParams) -> Result<Value, ActionError> {
        run_list(
            cx,
            Self::NAME,
            p.entity.path(),
            Vec::new(),
            p.filter,
            p.include_fields,
            p.max_records,
        )
        .await
    }
}

/// Parameters of `autotask.get_webhook`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetWebhookParams {
    /// The entity the webhook watches (`Company`, `Contact`, `ConfigurationItem`, `Ticket`,
    /// `TicketNote`).
    pub entity: WebhookEntity,
    /// The webhook's id.
    pub id: i64,
}

/// `autotask.get_webhook`.
#[derive(Debug, Clone, Copy, Default)]
pub struct GetWebhook;

impl TypedAction for GetWebhook {
    const NAME: &'static str = "autotask.get_webhook";
    const DESCRIPTION: &'static str = "Reads an Autotask webhook with its fields and excluded resources: {item, fields, excluded_resources}.";
    type Params = GetWebhookParams;

    async fn run(&self, cx: ActionContext, p: GetWebhookParams) -> Result<Value, ActionError> {
        with_client(&cx, Self::NAME, |c| async move {
            let item = c.get(p.entity.path(), p.id).await?;
            let (fields, excluded) = children(&c, p.entity, p.id).await?;
            Ok(json!({"item": item, "fields": fields, "excluded_resources": excluded}))
        })
        .await
    }
}

/// A field subscription of a new webhook.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookFieldSpec {
    /// Autotask's numeric field id (`fieldID`).
    pub field_id: i64,
    /// A change of this field triggers a callout.
    #[serde(default = "yes")]
    pub subscribed: bool,
    /// The field is sent in every callout.
    #[serde(default)]
    pub display_always: bool,
}

fn yes() -> bool {
    true
}

/// Parameters of `autotask.create_webhook`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookParams {
    /// The entity to watch (`Company`, `Contact`, `ConfigurationItem`, `Ticket`, `TicketNote`).
    pub entity: WebhookEntity,
    /// The webhook's fields: `name`, `webhookUrl`, `deactivationUrl`, `isActive` (required),
    /// `secretKey`, `isSubscribedToCreateEvents`, `isSubscribedToUpdateEvents`,
    /// `isSubscribedToDeleteEvents`, `notificationEmailAddress`…
    pub webhook: Map<String, Value>,
    /// Field subscriptions, created one after another (at least one is needed before the
    /// webhook sends anything).
    #[serde(default)]
    pub fields: Vec<WebhookFieldSpec>,
    /// Resource ids whose changes never trigger a callout (e.g. the integration's own user).
    #[serde(default)]
    pub excluded_resources: Vec<i64>,
}

/// `autotask.create_webhook`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CreateWebhook;

impl TypedAction for CreateWebhook {
    const NAME: &'static str = "autotask.create_webhook";
    const DESCRIPTION: &'static str = "Creates an Autotask webhook with its field subscriptions and excluded resources; returns {id, item, fields, excluded_resources}.";
    type Params = CreateWebhookParams;

    async fn run(&self, cx: ActionContext, p: CreateWebhookParams) -> Result<Value, ActionError> {
        with_client(&cx, Self::NAME, |c| async move {
            let path = p.entity.path();
            let id = c.create(path, Value::Object(p.webhook)).await?;
            for f in &p.fields {
                c.create(
                    &format!("{path}/{id}/Fields"),
                    json!({"webhookID": id, "fieldID": f.field_id, "isSubscribedField": f.subscribed, "isDisplayAlwaysField": f.display_always}),
                )
                .await
                .map_err(|e| ActionError::from(e).with_data(json!({"webhook_id": id})))?;
            }
            for r in &p.excluded_resources {
                c.create(&format!("{path}/{id}/ExcludedResources"), json!({"webhookID": id, "resourceID": r}))
                    .await
                    .map_err(|e| ActionError::from(e).with_data(json!({"webhook_id": id})))?;
            }
            let item = c.get(path, id).await?;
            let (fields, excluded) = children(&c, p.entity, id).await?;
            Ok(json!({"id": id, "item": item, "fields": fields, "excluded_resources": excluded}))
        })
        .await
    }
}

/// Parameters of `autotask.update_webhook`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhookParams {
    /// The entity the webhook watches.
    pub entity: WebhookEntity,
    /// The webhook's id.
    pub id: i64,
    /// Only the fields to change (`isActive`, `webhookUrl`, …).
    pub webhook: Map<String, Value>,
}

/// `autotask.update_webhook`.
#[derive(Debug, Clone, Copy, Default)]
pub struct UpdateWebhook;

impl TypedAction for UpdateWebhook {
    const NAME: &'static str = "autotask.update_webhook";
    const DESCRIPTION: &'static str =
        "Updates fields of an Autotask webhook (PATCH); returns {id, item}.";
    type Params = UpdateWebhookParams;

    async fn run(&self, cx: ActionContext, p: UpdateWebhookParams) -> Result<Value, ActionError> {
        with_client(&cx, Self::NAME, |c| async move {
            let id = c
                .update(p.entity.path(), p.id, Value::Object(p.webhook))
                .await?;
            Ok(json!({"id": id, "item": c.get(p.entity.path(), id).await?}))
        })
        .await
    }
}

/// Parameters of `autotask.delete_webhook`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteWebhookParams {
    /// The entity the webhook watches.
    pub entity: WebhookEntity,
    /// The webhook's id.
    pub id: i64,
}

/// `autotask.delete_webhook`.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeleteWebhook;

impl TypedAction for DeleteWebhook {
    const NAME: &'static str = "autotask.delete_webhook";
    const DESCRIPTION: &'static str = "Deletes an Autotask webhook; returns {id, deleted: true}.";
    type Params = DeleteWebhookParams;

    async fn run(&self, cx: ActionContext, p: DeleteWebhookParams) -> Result<Value, ActionError> {
        with_client(&cx, Self::NAME, |c| async move {
            c.delete(p.entity.path(), p.id).await?;
            Ok(json!({"id": p.id, "deleted": true}))
        })
        .await
    }
}

/// Parameters of `autotask.add_webhook_field`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddWebhookFieldParams {
    /// The entity the webhook watches.
    pub entity: WebhookEntity,
    /// The webhook's id.
    pub webhook_id: i64,
    /// Autotask's numeric field id (`fieldID`).
    pub field_id: i64,
    /// A change of this field triggers a callout.
    #[serde(default = "yes")]
    pub subscribed: bool,
    /// The field is sent in every callout.
    #[serde(default)]
    pub display_always: bool,
}

/// `autotask.add_webhook_field`.
#[derive(Debug, Clone, Copy, Default)]
pub struct AddWebhookField;

impl TypedAction for AddWebhookField {
    const NAME: &'static str = "autotask.add_webhook_field";
    const DESCRIPTION: &'static str = "Subscribes an Autotask webhook to a field; returns {id}.";
    type Params = AddWebhookFieldParams;

    async fn run(&self, cx: ActionContext, p: AddWebhookFieldParams) -> Result<Value, ActionError> {
        with_client(&cx, Self::NAME, |c| async move {
            let id = c
                .create(
                    &format!("{}/{}/Fields", p.entity.path(), p.webhook_id),
                    json!({"webhookID": p.webhook_id, "fieldID": p.field_id, "isSubscribedField": p.subscribed, "isDisplayAlwaysField": p.display_always}),
                )
                .await?;
            Ok(json!({"id": id}))
        })
        .await
    }
}

/// Parameters of `autotask.delete_webhook_field`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteWebhookFieldParams {
    /// The entity the webhook watches.
    pub entity: WebhookEntity,
    /// The webhook's id.
    pub webhook_id: i64,
    /// The id of the webhook field record (not the `fieldID`).
    pub id: i64,
}

/// `autotask.delete_webhook_field`.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeleteWebhookField;

impl TypedAction for DeleteWebhookField {
    const NAME: &'static str = "autotask.delete_webhook_field";
    const DESCRIPTION: &'static str = "Removes a field subscription from an Autotask webhook.";
    type Params = DeleteWebhookFieldParams;

    async fn run(
        &self,
        cx: ActionContext,
        p: DeleteWebhookFieldParams,
    ) -> Result<Value, ActionError> {
        with_client(&cx, Self::NAME, |c| async move {
            c.delete(
                &format!("{}/{}/Fields", p.entity.path(), p.webhook_id),
                p.id,
            )
            .await?;
            Ok(json!({"id": p.id, "deleted": true}))
        })
        .await
    }
}

/// Parameters of `autotask.add_webhook_excluded_resource`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddWebhookExcludedResourceParams {
    /// The entity the webhook watches.
    pub entity: WebhookEntity,
    /// The webhook's id.
    pub webhook_id: i64,
    /// The resource whose changes must not trigger callouts.
    pub resource_id: i64,
}

/// `autotask.add_webhook_excluded_resource`.
#[derive(Debug, Clone, Copy, Default)]
pub struct AddWebhookExcludedResource;

impl TypedAction for AddWebhookExcludedResource {
    const NAME: &'static str = "autotask.add_webhook_excluded_resource";
    const DESCRIPTION: &'static str =
        "Excludes a resource's changes from an Autotask webhook; returns {id}.";
    type Params = AddWebhookExcludedResourceParams;

    async fn run(
        &self,
        cx: ActionContext,
        p: AddWebhookExcludedResourceParams,
    ) -> Result<Value, ActionError> {
        with_client(&cx, Self::NAME, |c| async move {
            let id = c
                .create(
                    &format!("{}/{}/ExcludedResources", p.entity.path(), p.webhook_id),
                    json!({"webhookID": p.webhook_id, "resourceID": p.resource_id}),
                )
                .await?;
            Ok(json!({"id": id}))
        })
        .await
    }
}

/// Parameters of `autotask.delete_webhook_excluded_resource`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteWebhookExcludedResourceParams {
    /// The entity the webhook watches.
    pub entity: WebhookEntity,
    /// The webhook's id.
    pub webhook_id: i64,
    /// The id of the excluded-resource record.
    pub id: i64,
}

/// `autotask.delete_webhook_excluded_resource`.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeleteWebhookExcludedResource;

impl TypedAction for DeleteWebhookExcludedResource {
    const NAME: &'static str = "autotask.delete_webhook_excluded_resource";
    const DESCRIPTION: &'static str = "Removes an excluded resource from an Autotask webhook.";
    type Params = DeleteWebhookExcludedResourceParams;

    async fn run(
        &self,
        cx: ActionContext,
        p: DeleteWebhookExcludedResourceParams,
    ) -> Result<Value, ActionError> {
        with_client(&cx, Self::NAME, |c| async move {
            c.delete(
                &format!("{}/{}/ExcludedResources", p.entity.path(), p.webhook_id),
                p.id,
            )
            .await?;
            Ok(json!({"id": p.id, "deleted": true}))
        })
        .await
    }
}
