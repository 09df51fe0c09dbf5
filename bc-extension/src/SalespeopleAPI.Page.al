namespace BCSync.CRM;

using Microsoft.CRM.Team;

/// <summary>
/// Salespeople/purchasers for Business Central tenants before 26.1, which lack the standard API v2.0 page
/// (APIV2 - Salesperson/Purchaser, page 30075 in microsoft/BCApps
/// src/Apps/W1/APIV2/app/src/pages/APIV2SalespersonPurchaser.Page.al;
/// https://learn.microsoft.com/dynamics365/business-central/dev-itpro/api-reference/v2.0/resources/dynamics_salespersonpurchaser).
/// The same entity and property names as the standard page (including its spelling "commisionPercent"),
/// so the sync reads either one; only the route differs:
/// /api/bcsync/crm/v1.0/companies({companyId})/salespeoplePurchasers.
/// </summary>
page 50101 "BCSync Salespeople API"
{
    PageType = API;
    APIPublisher = 'bcsync';
    APIGroup = 'crm';
    APIVersion = 'v1.0';
    EntityName = 'salespersonPurchaser';
    EntitySetName = 'salespeoplePurchasers';
    EntityCaption = 'Salesperson/Purchaser';
    EntitySetCaption = 'Salespeople/Purchasers';
    SourceTable = "Salesperson/Purchaser";
    ODataKeyFields = SystemId;
    DelayedInsert = true;
    InsertAllowed = true;
    ModifyAllowed = true;
    DeleteAllowed = true;
    Extensible = false;

    layout
    {
        area(Content)
        {
            repeater(Records)
            {
                field(id; Rec.SystemId)
                {
                    Caption = 'Id';
                    // Editable so a POST can carry the client's id (API v2.0 allows it); a PATCH cannot change it.
                    Editable = true;

                    trigger OnValidate()
                    begin
                        if not IsInsert then
                            if Rec.SystemId <> xRec.SystemId then
                                Error(IdIsReadOnlyErr);
                    end;
                }
                field(code; Rec."Code")
                {
                    Caption = 'Code';
                    ShowMandatory = true;
                }
                field(displayName; Rec.Name)
                {
                    Caption = 'Name';
                }
                field(email; Rec."E-Mail")
                {
                    Caption = 'Email';
                }
                field(email2; Rec."E-Mail 2")
                {
                    Caption = 'Email 2';
                }
                field(phoneNo; Rec."Phone No.")
                {
                    Caption = 'Phone No.';
                }
                field(jobTitle; Rec."Job Title")
                {
                    Caption = 'Job Title';
                }
                field(commisionPercent; Rec."Commission %")
                {
                    Caption = 'Commission %';
                }
                field(privacyBlocked; Rec."Privacy Blocked")
                {
                    Caption = 'Privacy Blocked';
                }
                field(blocked; Rec.Blocked)
                {
                    Caption = 'Blocked';
                }
                field(lastModifiedDateTime; Rec.SystemModifiedAt)
                {
                    Caption = 'Last Modified Date';
                    Editable = false;
                }
            }
        }
    }

    trigger OnNewRecord(BelowxRec: Boolean)
    begin
        IsInsert := true;
        Clear(Rec.SystemId);
    end;

    trigger OnInsertRecord(BelowxRec: Boolean): Boolean
    var
        SalespersonPurchaser: Record "Salesperson/Purchaser";
    begin
        // The table has no number series: the code must come with the POST.
        if Rec."Code" = '' then
            Error(CodeRequiredErr);

        // A code that is taken fails with the platform's own "already exists" error before OnInsert runs.
        if SalespersonPurchaser.Get(Rec."Code") then
            Rec.Insert();

        // InsertWithSystemId: keep the id the client sent; the platform assigns one when it is blank.
        Rec.Insert(true, true);

        IsInsert := false;
        exit(false);
    end;

    trigger OnModifyRecord(): Boolean
    var
        SalespersonPurchaser: Record "Salesperson/Purchaser";
    begin
        SalespersonPurchaser.GetBySystemId(Rec.SystemId);

        if Rec."Code" = SalespersonPurchaser."Code" then
            Rec.Modify(true)
        else begin
            // A new code is a rename: documents, customers and dimensions that refer to it follow.
            SalespersonPurchaser.TransferFields(Rec, false);
            SalespersonPurchaser.Rename(Rec."Code");
            Rec.TransferFields(SalespersonPurchaser, true);
        end;

        exit(false);
    end;

    var
        IsInsert: Boolean;
        IdIsReadOnlyErr: Label 'The "id" of an existing salesperson/purchaser cannot be changed.', Comment = 'id is a field name and should not be translated.';
        CodeRequiredErr: Label 'A "code" must be provided.', Comment = 'code is a field name and should not be translated.';
}
