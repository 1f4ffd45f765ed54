//! The simulated entities: fields (types, read-only, references, picklists), required fields
//! and parent/child routes. Field lists follow the Swagger models (`appendix_models.md`),
//! trimmed to the fields an MSP workflow uses; required fields follow autotask.md §7. Which
//! methods each entity and child route has is not decided here but by the published routes
//! ([`crate::routes`]).
//!
//! Models newer than the April 2024 Swagger are assumed to follow their siblings there:
//! `DocumentAttachments` has the shape of every other attachment model (`parentID`, read-only
//! `parentType`); `WebhookEventErrorLogs` has the Swagger's `accountWebhookID` (Company
//! webhooks) and `contactWebhookID`, plus `configurationItemWebhookID`, `ticketWebhookID` and
//! `ticketNoteWebhookID` for the webhook entities that Swagger predates.

use std::sync::OnceLock;

use crate::routes;

#[derive(Debug, Clone)]
pub struct FieldDef {
    pub name: &'static str,
    /// Autotask metadata data type: integer, long, string, boolean, double, datetime.
    pub data_type: &'static str,
    pub length: u32,
    pub read_only: bool,
    pub queryable: bool,
    pub reference: Option<&'static str>,
    pub picklist: bool,
    /// Picklist whose values depend on another field (subIssueType → issueType).
    pub picklist_parent: Option<&'static str>,
}

#[derive(Debug)]
pub struct Spec {
    pub name: &'static str,
    pub fields: Vec<FieldDef>,
    pub required: &'static [&'static str],
    /// Top-level POST, PATCH/PUT and DELETE, as the published routes have them.
    pub create: bool,
    pub update: bool,
    pub delete: bool,
    pub udfs: bool,
    pub webhooks: bool,
    /// Fields subscribable by webhooks (isSupportedWebhookField).
    pub webhook_fields: bool,
}

impl Spec {
    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }
}

/// A parent/child route `/{parent}/{pid}/{segment}`.
#[derive(Debug)]
pub struct ChildRoute {
    pub parent: &'static str,
    pub segment: &'static str,
    pub child: &'static str,
    pub parent_field: &'static str,
    /// POST on the collection.
    pub create: bool,
    /// PUT/PATCH on the collection.
    pub update: bool,
    /// GET `/{id}`.
    pub get_one: bool,
    /// DELETE `/{id}`.
    pub delete: bool,
}

const WEBHOOK: &str = "id:l:ro name:s50 webhookUrl:s500 deactivationUrl:s500 secretKey:s64 isActive:b \
    isReady:b:ro isSubscribedToCreateEvents:b isSubscribedToUpdateEvents:b isSubscribedToDeleteEvents:b \
    notificationEmailAddress:s150 ownerResourceID:i:ref=Resources sendThresholdExceededNotification:b webhookGUID:s100:ro";
const WH_FIELD: &str =
    "id:l:ro fieldID:i:pk isDisplayAlwaysField:b isSubscribedField:b webhookID:i";
const WH_UDF: &str =
    "id:l:ro udfFieldID:i:pk isDisplayAlwaysField:b isSubscribedField:b webhookID:i";
const WH_EXCL: &str = "id:l:ro resourceID:i:ref=Resources webhookID:i";

/// (name, fields, required, udfs, webhooks). Which methods an entity has comes from the
/// published routes ([`crate::routes`]), not from this table.
type Raw = (
    &'static str,
    &'static str,
    &'static [&'static str],
    bool,
    bool,
);

#[rustfmt::skip]
fn raw() -> Vec<Raw> {
    // (name, fields, required, udfs, webhooks)
    vec![
        ("Companies",
         "id:l:ro companyName:s100 companyNumber:s50 companyType:i:pk classification:i:pk isActive:b \
          ownerResourceID:i:ref=Resources parentCompanyID:i:ref=Companies phone:s25 fax:s25 webAddress:s255 \
          address1:s150 address2:s150 city:s50 state:s25 postalCode:s20 countryID:i:pk territoryID:i:pk \
          marketSegmentID:i:pk createDate:t:ro lastActivityDate:t:ro lastTrackedModifiedDateTime:t:ro",
         &["companyName", "companyType", "phone", "ownerResourceID"], true, true),
        ("CompanyLocations",
         "id:l:ro companyID:i:ref=Companies name:s100 description:s500 address1:s100 address2:s100 city:s50 \
          state:s25 postalCode:s20 countryID:i:pk phone:s25 fax:s25 isActive:b isPrimary:b",
         &["companyID", "name"], true, false),
        ("CompanyNotes",
         "id:l:ro companyID:i:ref=Companies contactID:i:ref=Contacts opportunityID:i actionType:i:pk \
          assignedResourceID:i:ref=Resources name:s250 note:s32000 startDateTime:t endDateTime:t \
          completedDateTime:t createDateTime:t:ro lastModifiedDate:t:ro",
         &["companyID", "actionType", "assignedResourceID", "startDateTime", "endDateTime"], false, false),
        ("Contacts",
         "id:l:ro companyID:i:ref=Companies companyLocationID:i:ref=CompanyLocations firstName:s50 lastName:s50 \
          emailAddress:s254 emailAddress2:s254 emailAddress3:s254 phone:s25 mobilePhone:s25 title:s50 \
          isActive:i primaryContact:b externalID:s50 createDate:t:ro lastActivityDate:t:ro lastModifiedDate:t:ro",
         &["companyID", "firstName", "lastName", "isActive"], true, true),
        ("Tickets",
         "id:l:ro ticketNumber:s50:ro title:s255 description:s8000 companyID:i:ref=Companies \
          companyLocationID:i:ref=CompanyLocations contactID:i:ref=Contacts status:i:pk priority:i:pk \
          queueID:i:pk issueType:i:pk subIssueType:i:pk=issueType ticketCategory:i:pk ticketType:i:pk source:i:pk \
          assignedResourceID:i:ref=Resources assignedResourceRoleID:i:ref=Roles dueDateTime:t \
          configurationItemID:i:ref=ConfigurationItems contractID:i:ref=Contracts projectID:i:ref=Projects \
          createDate:t:ro completedDate:t:ro lastActivityDate:t:ro externalID:s50 \
          creatorType:i:ro:nq lastActivityPersonType:i:ro:nq",
         &["companyID", "title", "status", "priority"], true, true),
        ("TicketNotes",
         "id:l:ro ticketID:i:ref=Tickets title:s250 description:s32000 noteType:i:pk publish:i:pk \
          createDateTime:t:ro creatorResourceID:i:ro lastActivityDate:t:ro",
         &["ticketID", "description", "noteType", "publish"], false, true),
        ("TicketAttachments",
         "id:l:ro parentID:l:ref=Tickets parentType:i:ro attachDate:t:ro attachedByContactID:l:ro attachedByResourceID:l:ro \
          attachmentType:s32 contentType:s100 fileSize:d:ro fullPath:s2000 publish:i:pk title:s255 data:s:nq",
         &["title", "attachmentType", "publish"], false, false),
        ("TicketCategories",
         "id:l:ro name:s30 nickname:s3 isActive:b isApiOnly:b isGlobalDefault:b displayColorRGB:i:pk",
         &["name"], false, false),
        ("ConfigurationItems",
         "id:l:ro companyID:i:ref=Companies companyLocationID:i:ref=CompanyLocations contactID:i:ref=Contacts \
          productID:i:ref=Products isActive:b referenceTitle:s200 referenceNumber:s50 serialNumber:s100 \
          configurationItemType:i:pk configurationItemCategoryID:i:pk contractID:i:ref=Contracts \
          installDate:t warrantyExpirationDate:t location:s100 notes:s5000 rmmDeviceUID:s100 \
          rmmDeviceAuditHostname:s255:ro rmmDeviceAuditOperatingSystem:s255:ro createDate:t:ro lastModifiedTime:t:ro",
         &["companyID", "productID", "isActive"], true, true),
        ("ConfigurationItemTypes",
         "id:l:ro name:s50 isActive:b",
         &["name"], false, false),
        ("Contracts",
         "id:l:ro contractName:s100 contractNumber:s50 companyID:i:ref=Companies contactID:i:ref=Contacts \
          contractType:i:pk contractCategory:i:pk status:i:pk startDate:t endDate:t description:s2000 \
          isDefaultContract:b estimatedRevenue:d timeReportingRequiresStartAndStopTimes:i serviceLevelAgreementID:i:pk",
         &["companyID", "contractName", "contractType", "startDate", "endDate", "status",
           "timeReportingRequiresStartAndStopTimes"], true, false),
        ("Projects",
         "id:l:ro projectName:s100 projectNumber:s50:ro companyID:i:ref=Companies projectType:i:pk status:i:pk \
          startDateTime:t endDateTime:t projectLeadResourceID:i:ref=Resources department:i:pk description:s2000 \
          contractID:i:ref=Contracts completedPercentage:i createDateTime:t:ro lastActivityDateTime:t:ro",
         &["projectName", "companyID", "projectType", "startDateTime", "endDateTime", "status"], true, false),
        ("Phases",
         "id:l:ro projectID:i:ref=Projects parentPhaseID:i:ref=Phases title:s255 description:s8000 \
          startDate:t dueDate:t estimatedHours:d isScheduled:b phaseNumber:s50:ro createDate:t:ro",
         &["projectID", "title"], false, false),
        ("Tasks",
         "id:l:ro projectID:i:ref=Projects phaseID:i:ref=Phases title:s255 description:s8000 status:i:pk \
          taskType:i:pk priority:i assignedResourceID:i:ref=Resources assignedResourceRoleID:i:ref=Roles \
          startDateTime:t endDateTime:t estimatedHours:d taskNumber:s50:ro createDateTime:t:ro \
          lastActivityDateTime:t:ro",
         &["projectID", "title", "taskType", "status"], true, false),
        ("Resources",
         "id:l:ro firstName:s50 lastName:s50 email:s254 userName:s32 title:s50 isActive:b resourceType:s15 \
          licenseType:i:pk locationID:i officePhone:s25 mobilePhone:s25 hireDate:t",
         &["firstName", "lastName", "email", "userName"], true, false),
        ("Roles",
         "id:l:ro name:s200 description:s200 hourlyFactor:d hourlyRate:d isActive:b \
          isExcludedFromNewContracts:b isSystemRole:b:ro roleType:i quoteItemDefaultTaxCategoryId:i",
         &["name"], false, false),
        ("Products",
         "id:l:ro name:s100 description:s2000 sku:s50 manufacturerName:s100 manufacturerProductName:s100 \
          productCategory:i:pk unitCost:d unitPrice:d isActive:b isSerialized:b",
         &["name", "isActive"], true, false),
        ("Surveys",
         "id:l:ro name:s100 displayName:s100 description:s500",
         &[], false, false),
        ("SurveyResults",
         "id:l:ro surveyID:i:ref=Surveys companyID:i:ref=Companies contactID:i:ref=Contacts ticketID:i:ref=Tickets \
          sendDate:t completeDate:t surveyRating:d companyRating:d contactRating:d resourceRating:d",
         &[], false, false),
        ("TimeEntries",
         "id:l:ro resourceID:i:ref=Resources roleID:i:ref=Roles ticketID:i:ref=Tickets taskID:i:ref=Tasks \
          contractID:i:ref=Contracts dateWorked:t startDateTime:t endDateTime:t hoursWorked:d hoursToBill:d:ro \
          summaryNotes:s32000 internalNotes:s32000 billingCodeID:i:pk isNonBillable:b timeEntryType:i:ro \
          createDateTime:t:ro lastModifiedDateTime:t:ro",
         &["resourceID", "dateWorked"], false, false),
        ("DocumentCategories",
         "id:l:ro name:s100 description:s1000 isActive:b",
         &["name"], false, false),
        ("Documents",
         "id:l:ro title:s255 documentCategoryID:i:ref=DocumentCategories companyID:i:ref=Companies \
          publish:i:pk referenceLink:s2000 errorCodes:s1000 keywords:s1000 createdDateTime:t:ro \
          lastModifiedDateTime:t:ro",
         &["title", "documentCategoryID", "publish"], false, false),
        ("DocumentAttachments",
         "id:l:ro parentID:l:ref=Documents parentType:i:ro attachDate:t:ro attachedByContactID:l:ro \
          attachedByResourceID:l:ro attachmentType:s32 contentType:s100 fileSize:d:ro fullPath:s2000 \
          publish:i:pk title:s255 data:s:nq",
         &["title", "attachmentType", "publish"], false, false),
        ("WebhookEventErrorLogs",
         "id:l:ro accountWebhookID:i contactWebhookID:i configurationItemWebhookID:i ticketWebhookID:i \
          ticketNoteWebhookID:i createDateTime:t:ro errorMessage:s8000 payload:s32000 sequenceNumber:i",
         &[], false, false),
        ("CompanyWebhooks", WEBHOOK, &["name", "webhookUrl", "deactivationUrl", "isActive"], false, false),
        ("CompanyWebhookFields", WH_FIELD, &["fieldID", "webhookID"], false, false),
        ("CompanyWebhookUdfFields", WH_UDF, &["udfFieldID", "webhookID"], false, false),
        ("CompanyWebhookExcludedResources", WH_EXCL, &["resourceID", "webhookID"], false, false),
        ("ContactWebhooks", WEBHOOK, &["name", "webhookUrl", "deactivationUrl", "isActive"], false, false),
        ("ContactWebhookFields", WH_FIELD, &["fieldID", "webhookID"], false, false),
        ("ContactWebhookUdfFields", WH_UDF, &["udfFieldID", "webhookID"], false, false),
        ("ContactWebhookExcludedResources", WH_EXCL, &["resourceID", "webhookID"], false, false),
        ("ConfigurationItemWebhooks", WEBHOOK, &["name", "webhookUrl", "deactivationUrl", "isActive"], false, false),
        ("ConfigurationItemWebhookFields", WH_FIELD, &["fieldID", "webhookID"], false, false),
        ("ConfigurationItemWebhookUdfFields", WH_UDF, &["udfFieldID", "webhookID"], false, false),
        ("ConfigurationItemWebhookExcludedResources", WH_EXCL, &["resourceID", "webhookID"], false, false),
        ("TicketWebhooks", WEBHOOK, &["name", "webhookUrl", "deactivationUrl", "isActive"], false, false),
        ("TicketWebhookFields", WH_FIELD, &["fieldID", "webhookID"], false, false),
        ("TicketWebhookUdfFields", WH_UDF, &["udfFieldID", "webhookID"], false, false),
        ("TicketWebhookExcludedResources", WH_EXCL, &["resourceID", "webhookID"], false, false),
        ("TicketNoteWebhooks", WEBHOOK, &["name", "webhookUrl", "deactivationUrl", "isActive"], false, false),
        ("TicketNoteWebhookFields", WH_FIELD, &["fieldID", "webhookID"], false, false),
        ("TicketNoteWebhookExcludedResources", WH_EXCL, &["resourceID", "webhookID"], false, false),
    ]
}

fn parse_fields(dsl: &'static str, webhook_parent: bool) -> Vec<FieldDef> {
    dsl.split_whitespace()
        .map(|tok| {
            let mut parts = tok.split(':');
            let name = parts.next().unwrap();
            let ty = parts.next().unwrap_or("s");
            let (data_type, length) = match ty.chars().next().unwrap() {
                'i' => ("integer", 0),
                'l' => ("long", 0),
                'b' => ("boolean", 0),
                'd' => ("double", 0),
                't' => ("datetime", 0),
                _ => ("string", ty[1..].parse().unwrap_or(8000)),
            };
            let mut f = FieldDef {
                name,
                data_type,
                length,
                read_only: false,
                queryable: true,
                reference: None,
                picklist: false,
                picklist_parent: None,
            };
            for flag in parts {
                match flag {
                    "ro" => f.read_only = true,
                    "nq" => f.queryable = false,
                    "pk" => f.picklist = true,
                    _ if flag.starts_with("pk=") => {
                        f.picklist = true;
                        f.picklist_parent = Some(&flag[3..]);
                    }
                    _ if flag.starts_with("ref=") => f.reference = Some(&flag[4..]),
                    _ => panic!("bad field flag {flag}"),
                }
            }
            // webhookID on the webhook children references the parent webhook entity.
            let _ = webhook_parent;
            f
        })
        .collect()
}

pub fn specs() -> &'static [Spec] {
    static SPECS: OnceLock<Vec<Spec>> = OnceLock::new();
    SPECS.get_or_init(|| {
        raw()
            .into_iter()
            .map(|(name, dsl, required, udfs, webhooks)| Spec {
                name,
                fields: parse_fields(dsl, name.contains("Webhook")),
                required,
                create: routes::allows("POST", &format!("/V1.0/{name}")),
                update: routes::allows("PATCH", &format!("/V1.0/{name}")),
                delete: routes::allows("DELETE", &format!("/V1.0/{name}/1")),
                udfs,
                webhooks,
                webhook_fields: webhooks,
            })
            .collect()
    })
}

pub fn spec(name: &str) -> Option<&'static Spec> {
    specs().iter().find(|s| s.name.eq_ignore_ascii_case(name))
}

pub fn children() -> &'static [ChildRoute] {
    static CHILDREN: OnceLock<Vec<ChildRoute>> = OnceLock::new();
    CHILDREN.get_or_init(|| {
        // Which methods each child route has comes from the published routes.
        let c = |parent: &'static str, segment: &'static str, child, parent_field| {
            let base = format!("/V1.0/{parent}/1/{segment}");
            ChildRoute {
                parent,
                segment,
                child,
                parent_field,
                create: routes::allows("POST", &base),
                update: routes::allows("PATCH", &base),
                get_one: routes::allows("GET", &format!("{base}/1")),
                delete: routes::allows("DELETE", &format!("{base}/1")),
            }
        };
        let mut v = vec![
            c("Companies", "Contacts", "Contacts", "companyID"),
            c("Companies", "Locations", "CompanyLocations", "companyID"),
            c("Companies", "Notes", "CompanyNotes", "companyID"),
            c("Tickets", "Notes", "TicketNotes", "ticketID"),
            c("Tickets", "Attachments", "TicketAttachments", "parentID"),
            c("Projects", "Tasks", "Tasks", "projectID"),
            c("Projects", "Phases", "Phases", "projectID"),
            c(
                "Documents",
                "Attachments",
                "DocumentAttachments",
                "parentID",
            ),
            c(
                "DocumentCategories",
                "Documents",
                "Documents",
                "documentCategoryID",
            ),
        ];
        let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
        for wh in [
            "CompanyWebhooks",
            "ContactWebhooks",
            "ConfigurationItemWebhooks",
            "TicketWebhooks",
            "TicketNoteWebhooks",
        ] {
            let base = wh.trim_end_matches('s');
            for segment in ["Fields", "UdfFields", "ExcludedResources"] {
                let child = leak(format!("{base}{segment}"));
                if spec(child).is_some() {
                    v.push(c(wh, segment, child, "webhookID"));
                }
            }
        }
        v
    })
}

pub fn child_route(parent: &str, segment: &str) -> Option<&'static ChildRoute> {
    children()
        .iter()
        .find(|c| c.parent.eq_ignore_ascii_case(parent) && c.segment.eq_ignore_ascii_case(segment))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every simulated entity and child route is one the published API has, so the simulator
    /// models nothing the real service lacks.
    #[test]
    fn every_simulated_route_is_published() {
        for s in specs() {
            assert!(
                routes::allows("POST", &format!("/V1.0/{}/query", s.name)),
                "{} is not a published entity",
                s.name
            );
        }
        for c in children() {
            assert!(
                routes::allows("GET", &format!("/V1.0/{}/1/{}", c.parent, c.segment)),
                "{}/{{id}}/{} is not published",
                c.parent,
                c.segment
            );
            assert!(spec(c.child).is_some(), "{} has no spec", c.child);
        }
        let roles = spec("Roles").unwrap();
        assert!(roles.create && roles.update && !roles.delete);
        let companies = spec("Companies").unwrap();
        assert!(companies.create && companies.update && !companies.delete);
    }
}
