namespace BCSync.CRM;

using Microsoft.Foundation.UOM;
using Microsoft.Projects.Resources.Resource;

/// <summary>
/// Resources for the sync's RESOURCE-PRODUCT mapping: API v2.0 has no resources entity
/// (https://learn.microsoft.com/dynamics365/business-central/dev-itpro/api-reference/v2.0/).
/// Route: /api/bcsync/crm/v1.0/companies({companyId})/resources, GET/POST/PATCH/DELETE.
/// The field names are the sync's contract (shared/contracts/bc.json, entity "resources");
/// tests/unit/test_bc_extension.py holds this page against it.
/// </summary>
page 50100 "BCSync Resources API"
{
    PageType = API;
    APIPublisher = 'bcsync';
    APIGroup = 'crm';
    APIVersion = 'v1.0';
    EntityName = 'resource';
    EntitySetName = 'resources';
    EntityCaption = 'Resource';
    EntitySetCaption = 'Resources';
    SourceTable = Resource;
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
                    // The platform makes SystemId read-only unless the page says otherwise. Editable so a
                    // POST can carry the client's id (as API v2.0 allows, transition-to-api-v2.0); a PATCH
                    // cannot change it (see OnValidate).
                    Editable = true;

                    trigger OnValidate()
                    begin
                        if not IsInsert then
                            if Rec.SystemId <> xRec.SystemId then
                                Error(IdIsReadOnlyErr);
                    end;
                }
                field(number; Rec."No.")
                {
                    Caption = 'No.';
                }
                field(displayName; Rec.Name)
                {
                    Caption = 'Display Name';
                    ShowMandatory = true;

                    trigger OnValidate()
                    begin
                        if Rec.Name = '' then
                            Error(BlankDisplayNameErr);
                    end;
                }
                field(type; Rec.Type)
                {
                    Caption = 'Type';
                }
                // Bound to a variable: the table's OnValidate creates the Resource Unit of Measure row for
                // "No.", which a POST may leave to the number series until the insert. It is validated
                // into the record once the number is known (OnInsertRecord / OnModifyRecord).
                field(baseUnitOfMeasureCode; BaseUnitOfMeasureCode)
                {
                    Caption = 'Base Unit of Measure Code';

                    trigger OnValidate()
                    var
                        UnitOfMeasure: Record "Unit of Measure";
                    begin
                        if BaseUnitOfMeasureCode <> '' then
                            if not UnitOfMeasure.Get(BaseUnitOfMeasureCode) then
                                Error(UnknownUnitOfMeasureErr, BaseUnitOfMeasureCode);
                        BaseUnitOfMeasureSet := true;
                    end;
                }
                field(unitPrice; Rec."Unit Price")
                {
                    Caption = 'Unit Price';
                }
                field(unitCost; Rec."Unit Cost")
                {
                    Caption = 'Unit Cost';
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

    trigger OnAfterGetRecord()
    begin
        SetCalculatedFields();
    end;

    trigger OnNewRecord(BelowxRec: Boolean)
    begin
        IsInsert := true;
        Clear(Rec.SystemId);
        Clear(BaseUnitOfMeasureCode);
        BaseUnitOfMeasureSet := false;
    end;

    trigger OnInsertRecord(BelowxRec: Boolean): Boolean
    var
        Resource: Record Resource;
    begin
        if Rec.Name = '' then
            Error(DisplayNameRequiredErr);

        // A number that is taken fails here with the platform's own "already exists" error, before the
        // table's OnInsert trigger has done anything (the pattern of APIV2 - Customers).
        if Rec."No." <> '' then
            if Resource.Get(Rec."No.") then
                Rec.Insert();

        // InsertWithSystemId: keep the id the client sent; the platform assigns one when it is blank.
        // A second POST with the same id is refused by the platform's unique SystemId index, so a
        // redone create cannot make a twin.
        Rec.Insert(true, true);

        if BaseUnitOfMeasureSet and (BaseUnitOfMeasureCode <> '') then begin
            Rec.Validate("Base Unit of Measure", BaseUnitOfMeasureCode);
            Rec.Modify(true);
        end;

        IsInsert := false;
        SetCalculatedFields();
        exit(false);
    end;

    trigger OnModifyRecord(): Boolean
    var
        Resource: Record Resource;
    begin
        Resource.GetBySystemId(Rec.SystemId);

        if Rec."No." = Resource."No." then begin
            ApplyBaseUnitOfMeasure(Rec);
            Rec.Modify(true);
        end else begin
            // A new number is a rename (as in APIV2 - Customers); the unit row then belongs to the new number.
            Resource.TransferFields(Rec, false);
            Resource.Rename(Rec."No.");
            ApplyBaseUnitOfMeasure(Resource);
            Resource.Modify(true);
            Rec.TransferFields(Resource, true);
        end;

        SetCalculatedFields();
        exit(false);
    end;

    var
        BaseUnitOfMeasureCode: Code[10];
        BaseUnitOfMeasureSet: Boolean;
        IsInsert: Boolean;
        IdIsReadOnlyErr: Label 'The "id" of an existing resource cannot be changed.', Comment = 'id is a field name and should not be translated.';
        DisplayNameRequiredErr: Label 'A "displayName" must be provided.', Comment = 'displayName is a field name and should not be translated.';
        BlankDisplayNameErr: Label 'The blank "displayName" is not allowed.', Comment = 'displayName is a field name and should not be translated.';
        UnknownUnitOfMeasureErr: Label 'The "baseUnitOfMeasureCode" %1 does not match a Unit of Measure.', Comment = '%1 = the unit of measure code; baseUnitOfMeasureCode is a field name and should not be translated.';

    local procedure ApplyBaseUnitOfMeasure(var Resource: Record Resource)
    begin
        // The table's validation checks that no ledger entries exist before the base unit changes.
        if BaseUnitOfMeasureSet and (BaseUnitOfMeasureCode <> Resource."Base Unit of Measure") then
            Resource.Validate("Base Unit of Measure", BaseUnitOfMeasureCode);
    end;

    local procedure SetCalculatedFields()
    begin
        BaseUnitOfMeasureCode := Rec."Base Unit of Measure";
        BaseUnitOfMeasureSet := false;
    end;
}
